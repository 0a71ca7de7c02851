// The job worker's lane says what each email really waits for: its turn under rush pacing, a
// mail-server connection, the SMTP exchange. Real graphile-worker, real tasks, a real SMTP server
// holding each message, the lane read as the job worker publishes it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';
import { createEmailDelivery } from '../../src/jobs/email/deliver-email.ts';
import { createSmtpTransport, type MailTransport } from '../../src/jobs/email/mail-transport.ts';
import { createLimiter } from '../../src/jobs/job-entries.ts';
import { type JobRunners, startJobRunners } from '../../src/jobs/job-runners.ts';
import { RUSH_EMAILS_PER_SECOND } from '../../src/jobs/rush-yield.ts';
import { createSendEmailTask } from '../../src/jobs/tasks/send-email.task.ts';
import { startJobActivity } from '../../src/observability/job-activity.ts';
import { queueStats } from '../../src/db/queries/jobs.queries.ts';
import { processMetrics } from '../../src/observability/metrics.ts';
import type { WorkerActivity } from '../../src/observability/request-tracker.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';

const EMAILS = 6;
let db: TestDatabase;
let server: TestServer;
let smtp: TestSmtpServer;
let transport: MailTransport;
let runners: JobRunners | undefined;
let activity: ReturnType<typeof startJobActivity>;
const limiter = createLimiter(2);

before(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.sql);
  smtp = await startSmtpServer();
  smtp.behaviour.delayMs = 1_500;
  const logger = pino({ level: 'silent' });
  transport = createSmtpTransport({ url: smtp.url, concurrency: 2, timeoutMs: 30_000 });
  activity = startJobActivity(() => queueStats(db.sql), processMetrics('jobs'), () => {}, { transport: transport.kind });
  // What rush-yield.ts does when a rush starts: one email at a time, paced.
  limiter.setLimit(1, 1000 / RUSH_EMAILS_PER_SECOND);
  activity.lanes.setRush(true);
  runners = await startJobRunners({
    databaseUrl: db.url,
    sql: db.sql,
    logger,
    pollIntervalMs: 200,
    specs: [{
      name: 'email',
      concurrency: 8, // every job of the registrations at once: their emails all reach the limiter
      taskList: { send_email: createSendEmailTask(db.sql, createEmailDelivery({ sql: db.sql, transport, from: 'Registrar <no-reply@localhost>', publicUrl: 'http://127.0.0.1:3000', logger }), limiter, activity.lanes) },
    }],
  });
});

after(async () => {
  await runners?.stop();
  activity.stop();
  await transport.close();
  await smtp.stop();
  await server.close();
  await db.drop();
});

async function lane(check: (lane: WorkerActivity) => boolean, what: string): Promise<WorkerActivity> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const now = activity.snapshot();
    if (check(now)) return now;
    assert.ok(Date.now() < deadline, `${what}; the lane: ${JSON.stringify(now)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('emails paced for a rush say so, one sends to SMTP, and they wait for a connection once the rush is over', async () => {
  const course = await newCourse(server.client, { capacity: 50, waitlistCapacity: 0 });
  const answers = await Promise.all(Array.from({ length: EMAILS }, (_, i) => server.client.register(student(course, i, 'lane'))));
  assert.ok(answers.every((a) => a.status === 201));

  const paced = await lane((l) => (l.byPhase['sending email to SMTP'] ?? 0) === 1 && (l.byPhase['waiting: rush pacing'] ?? 0) >= 2, 'one email at the SMTP server, the others paced');
  assert.equal(paced.byPhase['sending email'], undefined, 'no email counted as sending while it waits');
  const waiting = paced.sample.filter((s) => s.phase.startsWith('waiting: rush pacing'));
  const total = paced.byPhase['waiting: rush pacing']!;
  assert.ok(waiting.some((s) => s.phase === `waiting: rush pacing (email 1 of ${total} in line)`), JSON.stringify(waiting));
  assert.ok(paced.sample.some((s) => s.phase === 'sending email to SMTP' && /email \d+ of \d+/.test(s.label)), JSON.stringify(paced.sample));
  assert.equal(paced.inFlight, Object.values(paced.byPhase).reduce((a, b) => a + b, 0), 'one lane entry per email');

  // The rush is over: two at once, the rest wait for one of the two connections.
  limiter.setLimit(2);
  activity.lanes.setRush(false);
  const free = await lane((l) => (l.byPhase['waiting: rush pacing'] ?? 0) === 0 && (l.byPhase['waiting for a mail-server connection'] ?? 0) >= 1, 'the waits named for the connections');
  assert.ok(free.sample.some((s) => /^waiting for a mail-server connection \(email 1 of \d+ in line\)$/.test(s.phase)), JSON.stringify(free.sample));

  await smtp.waitForMessages(EMAILS, 60_000);
  await lane((l) => l.inFlight === 0, 'every email done, the lane empty');
});
