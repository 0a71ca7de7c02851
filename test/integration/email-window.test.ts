// The email send window against a real SMTP server: it grows while the server keeps up, halves on
// 421/451 replies and on timeouts so that the server then handles fewer messages at once, never
// exceeds its ceiling, and every event is still emailed exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSendWindow, type SendWindow } from '../../src/jobs/email/send-window.ts';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestJobRunners } from '../support/job-runners.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ smtp: true });

/** Job runners whose email runner uses `window`, stopped at the end of the test. */
async function runWith(t: { after(fn: () => Promise<void>): void }, window: SendWindow, smtpTimeoutMs?: number): Promise<JobRunners> {
  const runners = await startTestJobRunners(stack.db, { smtpUrl: stack.smtp.url, emailWindow: window, ...(smtpTimeoutMs ? { smtpTimeoutMs } : {}) });
  t.after(() => runners.stop());
  return runners;
}

type Registered = { course: string; emails: Set<string> };

/** Registers `n` students on a new course with a seat for each. */
async function registerStudents(n: number, prefix: string): Promise<Registered> {
  const course = await newCourse(stack.server.client, { capacity: n });
  const students = Array.from({ length: n }, (_, i) => student(course, i, prefix));
  const answers = await Promise.all(students.map((s) => stack.server.client.register(s)));
  assert.ok(answers.every((a) => a.status === 201));
  return { course, emails: new Set(students.map((s) => s.email)) };
}

/** Waits for the course's emails, then checks each of its events was emailed exactly once. */
async function assertEveryEventEmailedOnce({ course, emails }: Registered): Promise<void> {
  const [row] = await stack.db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM registration_events e JOIN registrations r ON r.id = e.registration_id WHERE r.course_id = ${course}`;
  const events = row!.n;
  assert.equal(events, emails.size, 'one event per registration');
  const ofCourse = () => stack.smtp.messages.filter((m) => m.to.some((to) => emails.has(to)));
  await eventually(async () => ofCourse().length, (n) => n >= events, 120_000);
  const ids = ofCourse().map((m) => m.messageId);
  assert.equal(new Set(ids).size, events, 'every event emailed');
  assert.equal(ids.length, events, 'no email sent twice');
}

test('with a fast server the window grows from 1, and never above its ceiling', async (t) => {
  stack.smtp.inProgress.resetPeak();
  const window = createSendWindow({ ceiling: 6, initial: 1 });
  await runWith(t, window);
  await assertEveryEventEmailedOnce(await registerStudents(150, 'grow'));
  assert.equal(window.size, 6, 'grown to the ceiling (1 + 2 + ... + 5 = 15 full, fast sends suffice)');
  assert.ok(stack.smtp.inProgress.peak <= 6, `the server handled ${stack.smtp.inProgress.peak} messages at once; the ceiling is 6`);
});

for (const code of [421, 451]) {
  test(`${code} replies halve the window, and the server then handles fewer messages at once`, async (t) => {
    stack.smtp.behaviour.delayMs = 1_000; // long enough for the first window's sends to overlap at the server
    stack.smtp.behaviour.refuseWith = code;
    t.after(() => {
      stack.smtp.behaviour.delayMs = 0;
      stack.smtp.behaviour.refuseWith = undefined;
    });
    stack.smtp.inProgress.resetPeak();
    const window = createSendWindow({ ceiling: 16 });
    await runWith(t, window);
    const registered = await registerStudents(40, `refused${code}`);
    await eventually(async () => window.size, (size) => size <= 2);
    const peakWhileRefusing = stack.smtp.inProgress.peak;
    assert.ok(peakWhileRefusing > 10 && peakWhileRefusing <= 16, `the window starts at its ceiling, 16: the server handled ${peakWhileRefusing} at once`);
    stack.smtp.behaviour.refuseWith = undefined;
    stack.smtp.behaviour.delayMs = 200;
    // Replies still to come were sent before the last halving: wait for them, then watch afresh.
    await eventually(async () => stack.smtp.inProgress.now, (now) => now <= window.size);
    stack.smtp.inProgress.resetPeak();
    await assertEveryEventEmailedOnce(registered);
    // From a window of at most 2, 40 accepted sends grow it by at most 8 (2 + 3 + ... + 9 = 44).
    assert.ok(stack.smtp.inProgress.peak <= 10, `the server handled ${stack.smtp.inProgress.peak} messages at once after the refusals (${peakWhileRefusing} before)`);
    assert.ok(window.size > 2, 'and the window grows again once the server accepts');
  });
}

test('timeouts halve the window, and the server then handles fewer messages at once', async (t) => {
  stack.smtp.behaviour.delayMs = 1_500; // beyond the client's 300 ms timeout: every send times out
  t.after(() => {
    stack.smtp.behaviour.delayMs = 0;
  });
  stack.smtp.inProgress.resetPeak();
  const window = createSendWindow({ ceiling: 16 });
  await runWith(t, window, 300);
  const registered = await registerStudents(40, 'timeout');
  await eventually(async () => window.size, (size) => size <= 2);
  // The server goes on with a message whose client timed out, so it may hold more than the window.
  const peakWhileTimingOut = stack.smtp.inProgress.peak;
  assert.ok(peakWhileTimingOut > 10, `the window starts at its ceiling, 16: the server handled ${peakWhileTimingOut} at once`);
  stack.smtp.behaviour.delayMs = 0;
  // The server still works on messages whose client timed out: wait for them, then watch afresh.
  await eventually(async () => stack.smtp.inProgress.now, (now) => now <= window.size);
  stack.smtp.inProgress.resetPeak();
  await assertEveryEventEmailedOnce(registered);
  assert.ok(stack.smtp.inProgress.peak <= 10, `the server handled ${stack.smtp.inProgress.peak} messages at once after the timeouts (${peakWhileTimingOut} before)`);
});
