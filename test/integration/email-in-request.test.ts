// The bench's email-in-request plug-in (test/support/email-in-request.ts) on a real server, a real
// job worker and real SMTP servers: each 201 waits for its email, and the request and the job
// never send one email twice, whichever of them gets to it first.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { sendEmailsInRequests } from '../support/email-in-request.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { type Client, startTestServer, type TestServer } from '../support/http.ts';
import { startTestJobRunners } from '../support/job-runners.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';

let db: TestDatabase;
/** The job worker's mail server. */
let smtp: TestSmtpServer;
let runners: JobRunners;

before(async () => {
  db = await createTestDatabase();
  smtp = await startSmtpServer();
  runners = await startTestJobRunners(db, { smtpUrl: smtp.url, emailConcurrency: 8 });
});
after(async () => {
  await runners.stop();
  await smtp.stop();
  await db.drop();
});

/** A server built while the plug-in listens, as in a service process loaded with it. */
async function startServerWithPlugin(smtpUrl: string, emailConcurrency: number): Promise<TestServer> {
  const stop = sendEmailsInRequests(() => loadConfig({ DATABASE_URL: db.url, SMTP_URL: smtpUrl, EMAIL_CONCURRENCY: String(emailConcurrency), LOG_LEVEL: 'silent' }));
  try {
    return await startTestServer(db.sql);
  } finally {
    stop();
  }
}

async function pendingEmailJobs(): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'send_email'`;
  return row!.n;
}

/** Makes every held email job runnable now, and waits until the job worker has run them all. */
async function runHeldJobs(): Promise<void> {
  await db.sql`UPDATE graphile_worker._private_jobs SET run_at = now() WHERE locked_at IS NULL`;
  await eventually(pendingEmailJobs, (n) => n === 0, 60_000);
}

/** The send_email job holding this address's creation event. */
async function creationJobOf(email: string): Promise<string | undefined> {
  const [row] = await db.sql<{ id: string }[]>`
    SELECT j.id::text FROM graphile_worker._private_jobs j
    JOIN registration_events e ON j.payload::jsonb @> jsonb_build_array(jsonb_build_object('eventId', e.id))
    JOIN registrations r ON r.id = e.registration_id
    WHERE r.email = ${email} AND e.kind IN ('enrolled', 'waitlisted')`;
  return row?.id;
}

function countsByMessageId(...servers: TestSmtpServer[]): number[] {
  const counts = new Map<string, number>();
  for (const m of servers.flatMap((s) => s.messages)) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
  return [...counts.values()];
}

test('each answer waits for its email, sent once; one refused for now is sent by its job; a cancel goes through the queue', async () => {
  const requestSmtp = await startSmtpServer({ delayMs: 300 });
  const server = await startServerWithPlugin(requestSmtp.url, 4);
  try {
    const course = await newCourse(server.client, { capacity: 5 });
    const answer = await server.client.register(student(course, 1, 'plugin'));
    const answeredAt = Date.now();
    assert.equal(answer.status, 201);
    assert.equal(requestSmtp.messages.length, 1, 'the email was accepted before the answer');
    assert.ok(requestSmtp.messages[0]!.receivedAt <= answeredAt);
    // Its job, run now, finds the email sent and sends nothing.
    await runHeldJobs();
    assert.equal(requestSmtp.messages.length + smtp.messages.length, 1);

    // The mail server refuses the request's attempt (451): the answer is still a 201 (committed),
    // and the job sends the email.
    requestSmtp.behaviour.refuseFirstAttempt = true;
    const refused = await server.client.register(student(course, 2, 'plugin'));
    assert.equal(refused.status, 201);
    assert.equal(requestSmtp.messages.length, 1, 'refused inside the request');
    await runHeldJobs();
    assert.equal(smtp.messages.length, 1, 'sent by its job');
    assert.deepEqual(countsByMessageId(requestSmtp, smtp), [1, 1], 'each email accepted once');

    // A cancel is not the request's to send: the queue sends it at once.
    assert.equal((await server.client.admin('DELETE', `/registrations/${answer.body.id}`)).status, 200);
    await smtp.waitForMessages(2, 60_000);
    assert.match(smtp.messages[1]!.raw, /cancel/i);
  } finally {
    await server.close();
    await requestSmtp.stop();
    smtp.messages.length = 0;
  }
});

/**
 * Two registrations through a server with the plug-in and one SMTP connection, held 2 s by the
 * first one's email: `meanwhile` runs once the second is committed and waits for its turn.
 */
async function secondWaitsForTheFirst(prefix: string, meanwhile: (client: Client, course: string, secondJob: string) => Promise<void>): Promise<{ requestSmtp: TestSmtpServer }> {
  const requestSmtp = await startSmtpServer({ delayMs: 2_000 });
  const server = await startServerWithPlugin(requestSmtp.url, 1);
  try {
    const course = await newCourse(server.client, { capacity: 5, title: 'Difference Engines' });
    const first = server.client.register(student(course, 1, prefix));
    await eventually(async () => requestSmtp.attempts.size, (n) => n === 1, 30_000);
    const second = server.client.register(student(course, 2, prefix));
    const secondJob = await eventually(() => creationJobOf(`${prefix}2@example.org`), (id) => id !== undefined, 30_000);
    await meanwhile(server.client, course, secondJob!);
    assert.deepEqual((await Promise.all([first, second])).map((a) => a.status), [201, 201]);
    return { requestSmtp };
  } finally {
    await server.close();
    await requestSmtp.stop();
  }
}

test('a request sends its registration\'s own email, not a reminder committed while it waited for a connection', async () => {
  const { requestSmtp } = await secondWaitsForTheFirst('turn', async (client, course) => {
    assert.equal((await client.register(student(course, 2, 'turn'))).status, 200, 'a duplicate: its reminder goes through the queue');
  });
  try {
    assert.deepEqual(requestSmtp.messages.map((m) => [m.to[0], m.subject]), [
      ['turn1@example.org', 'You are enrolled in Difference Engines'],
      ['turn2@example.org', 'You are enrolled in Difference Engines'],
    ]);
    await runHeldJobs();
    assert.deepEqual(smtp.messages.map((m) => m.to[0]), ['turn2@example.org'], 'the reminder, from the job');
    assert.deepEqual(countsByMessageId(requestSmtp, smtp), [1, 1, 1]);
  } finally {
    smtp.messages.length = 0;
  }
});

test('an email whose job is already running is left to the job: the request answers without it, and it goes once', async () => {
  let job = '';
  const { requestSmtp } = await secondWaitsForTheFirst('taken', async (_client, _course, secondJob) => {
    // Locked as a job worker locks the job it runs, while the request waits for its turn.
    job = secondJob;
    await db.sql`UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'a job worker' WHERE id = ${job}`;
  });
  try {
    assert.deepEqual(requestSmtp.messages.map((m) => m.to[0]), ['taken1@example.org'], 'the request left the second email to its job');
    await db.sql`UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL WHERE id = ${job}`;
    await runHeldJobs();
    assert.deepEqual(smtp.messages.map((m) => m.to[0]), ['taken2@example.org']);
    assert.deepEqual(countsByMessageId(requestSmtp, smtp), [1, 1]);
  } finally {
    smtp.messages.length = 0;
  }
});

test('closing the server drops the hold: new registrations\' emails go through the queue at once', async () => {
  const requestSmtp = await startSmtpServer();
  await (await startServerWithPlugin(requestSmtp.url, 1)).close();
  await requestSmtp.stop();
  const server = await startTestServer(db.sql);
  try {
    const course = await newCourse(server.client, { capacity: 5 });
    assert.equal((await server.client.register(student(course, 1, 'after'))).status, 201);
    await smtp.waitForMessages(1, 30_000);
    assert.equal(requestSmtp.messages.length, 0);
  } finally {
    await server.close();
  }
});

test('an Idempotency-Key replay while the first request still sends: both 201, the email once', async () => {
  const requestSmtp = await startSmtpServer({ delayMs: 1_500 });
  const server = await startServerWithPlugin(requestSmtp.url, 4);
  smtp.messages.length = 0; // the job worker's server: what earlier tests left there is not this one's
  try {
    const course = await newCourse(server.client, { capacity: 5 });
    const body = student(course, 1, 'replay');
    const headers = { 'idempotency-key': `replay-${course}` };
    const first = server.client.request('POST', '/register', { body, headers });
    // The first answer's transaction has committed once its email is on the way.
    await eventually(async () => requestSmtp.inProgress.now, (n) => n >= 1, 30_000);
    const replay = await server.client.request('POST', '/register', { body, headers });
    const original = await first;
    assert.deepEqual([original.status, replay.status], [201, 201]);
    assert.equal(replay.body.id, original.body.id);
    await runHeldJobs();
    assert.deepEqual(countsByMessageId(requestSmtp, smtp), [1], 'one message for the one registration');
  } finally {
    smtp.messages.length = 0;
    await server.close();
    await requestSmtp.stop();
  }
});
