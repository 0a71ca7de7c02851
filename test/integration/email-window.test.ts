// The email send window against a real SMTP server: it grows while the server keeps up, halves on
// 421/451 replies and on timeouts so that the server then handles fewer messages at once, never
// exceeds its ceiling, and every event is still emailed exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSendWindow, type SendWindow } from '../../src/jobs/email/send-window.ts';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';
import { startTestJobRunners } from '../support/job-runners.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';

let db: TestDatabase;
let server: TestServer;
let smtp: TestSmtpServer;

before(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.sql);
  smtp = await startSmtpServer();
});
after(async () => {
  await smtp.stop();
  await server.close();
  await db.drop();
});

/** Job runners whose email runner uses `window`, stopped at the end of the test. */
async function runWith(t: { after(fn: () => Promise<void>): void }, window: SendWindow, smtpTimeoutMs?: number): Promise<JobRunners> {
  const runners = await startTestJobRunners(db, { smtpUrl: smtp.url, emailWindow: window, ...(smtpTimeoutMs ? { smtpTimeoutMs } : {}) });
  t.after(() => runners.stop());
  return runners;
}

type Registered = { course: string; emails: Set<string> };

/** Registers `n` students on a new course with a seat for each. */
async function registerStudents(n: number, prefix: string): Promise<Registered> {
  const course = await newCourse(server.client, { capacity: n });
  const students = Array.from({ length: n }, (_, i) => student(course, i, prefix));
  const answers = await Promise.all(students.map((s) => server.client.register(s)));
  assert.ok(answers.every((a) => a.status === 201));
  return { course, emails: new Set(students.map((s) => s.email)) };
}

/** Waits for the course's emails, then checks each of its events was emailed exactly once. */
async function assertEveryEventEmailedOnce({ course, emails }: Registered): Promise<void> {
  const [row] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM registration_events e JOIN registrations r ON r.id = e.registration_id WHERE r.course_id = ${course}`;
  const events = row!.n;
  assert.equal(events, emails.size, 'one event per registration');
  const ofCourse = () => smtp.messages.filter((m) => m.to.some((to) => emails.has(to)));
  await eventually(async () => ofCourse().length, (n) => n >= events, 120_000);
  const ids = ofCourse().map((m) => m.messageId);
  assert.equal(new Set(ids).size, events, 'every event emailed');
  assert.equal(ids.length, events, 'no email sent twice');
}

test('with a fast server the window grows from 1, and never above its ceiling', async (t) => {
  smtp.inProgress.resetPeak();
  const window = createSendWindow({ ceiling: 6, initial: 1 });
  await runWith(t, window);
  await assertEveryEventEmailedOnce(await registerStudents(150, 'grow'));
  assert.equal(window.size, 6, 'grown to the ceiling (1 + 2 + ... + 5 = 15 full, fast sends suffice)');
  assert.ok(smtp.inProgress.peak <= 6, `the server handled ${smtp.inProgress.peak} messages at once; the ceiling is 6`);
});

for (const code of [421, 451]) {
  test(`${code} replies halve the window, and the server then handles fewer messages at once`, async (t) => {
    smtp.behaviour.delayMs = 1_000; // long enough for the first window's sends to overlap at the server
    smtp.behaviour.refuseWith = code;
    t.after(() => {
      smtp.behaviour.delayMs = 0;
      smtp.behaviour.refuseWith = undefined;
    });
    smtp.inProgress.resetPeak();
    const window = createSendWindow({ ceiling: 16 });
    await runWith(t, window);
    const registered = await registerStudents(40, `refused${code}`);
    await eventually(async () => window.size, (size) => size <= 2);
    const peakWhileRefusing = smtp.inProgress.peak;
    assert.ok(peakWhileRefusing > 10 && peakWhileRefusing <= 16, `the window starts at its ceiling, 16: the server handled ${peakWhileRefusing} at once`);
    smtp.behaviour.refuseWith = undefined;
    smtp.behaviour.delayMs = 200;
    // Replies still to come were sent before the last halving: wait for them, then watch afresh.
    await eventually(async () => smtp.inProgress.now, (now) => now <= window.size);
    smtp.inProgress.resetPeak();
    await assertEveryEventEmailedOnce(registered);
    // From a window of at most 2, 40 accepted sends grow it by at most 8 (2 + 3 + ... + 9 = 44).
    assert.ok(smtp.inProgress.peak <= 10, `the server handled ${smtp.inProgress.peak} messages at once after the refusals (${peakWhileRefusing} before)`);
    assert.ok(window.size > 2, 'and the window grows again once the server accepts');
  });
}

test('timeouts halve the window, and the server then handles fewer messages at once', async (t) => {
  smtp.behaviour.delayMs = 1_500; // beyond the client's 300 ms timeout: every send times out
  t.after(() => {
    smtp.behaviour.delayMs = 0;
  });
  smtp.inProgress.resetPeak();
  const window = createSendWindow({ ceiling: 16 });
  await runWith(t, window, 300);
  const registered = await registerStudents(40, 'timeout');
  await eventually(async () => window.size, (size) => size <= 2);
  // The server goes on with a message whose client timed out, so it may hold more than the window.
  const peakWhileTimingOut = smtp.inProgress.peak;
  assert.ok(peakWhileTimingOut > 10, `the window starts at its ceiling, 16: the server handled ${peakWhileTimingOut} at once`);
  smtp.behaviour.delayMs = 0;
  // The server still works on messages whose client timed out: wait for them, then watch afresh.
  await eventually(async () => smtp.inProgress.now, (now) => now <= window.size);
  smtp.inProgress.resetPeak();
  await assertEveryEventEmailedOnce(registered);
  assert.ok(smtp.inProgress.peak <= 10, `the server handled ${smtp.inProgress.peak} messages at once after the timeouts (${peakWhileTimingOut} before)`);
});
