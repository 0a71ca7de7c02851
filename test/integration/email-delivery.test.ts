// Email off the request path, against a real SMTP server: answers never wait for mail, every
// committed event is delivered exactly once through slowness, refusals and outages, and a
// rolled-back change sends nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';
import { startTestJobRunners } from '../support/job-runners.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

let db: TestDatabase;
let server: TestServer;
let smtp: TestSmtpServer;
let runners: JobRunners;

before(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.sql);
  smtp = await startSmtpServer();
  runners = await startTestJobRunners(db, { smtpUrl: smtp.url, emailConcurrency: 25 });
});
after(async () => {
  await runners.stop();
  await smtp.stop();
  await server.close();
  await db.drop();
});

function byMessageId(messages: { messageId: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
  return counts;
}

async function settle(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function pendingEmailJobs(): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'send_email'`;
  return row?.n ?? 0;
}

describe('email', () => {
  test('100 registrations at once with a 2 s SMTP server: every answer comes back before its email, then all 100 arrive once', async () => {
    smtp.messages.length = 0;
    smtp.behaviour.delayMs = 2_000;
    const course = await newCourse(server.client, { capacity: 80, waitlistCapacity: 20 });
    const started = Date.now();
    const latencies: number[] = [];
    const answeredAt = new Map<string, number>();
    const answers = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const t0 = Date.now();
      const answer = await server.client.register(student(course, i, 'mail'));
      answeredAt.set(student(course, i, 'mail').email, Date.now());
      latencies.push(Date.now() - t0);
      return answer;
    }));
    const lastAnswerAt = Date.now();
    assert.ok(answers.every((a) => a.status === 201));
    const messages = await smtp.waitForMessages(100, 120_000);
    const lastEmailAt = Math.max(...messages.map((m) => m.receivedAt));
    // Ordering, not timing: each student had their answer before the SMTP server accepted their
    // email, which it holds for 2 s first. An answer that waited for its email would come after.
    for (const message of messages) {
      const to = message.to[0]!;
      assert.ok(answeredAt.get(to)! <= message.receivedAt, `${to} got the answer after the email was accepted`);
    }
    const counts = byMessageId(messages);
    assert.equal(counts.size, 100);
    assert.ok([...counts.values()].every((n) => n === 1), 'a message arrived twice');
    const recipients = new Set(messages.flatMap((m) => m.to));
    assert.equal(recipients.size, 100);
    assert.equal(messages.filter((m) => /enrolled in/.test(m.subject)).length, 80);
    assert.equal(messages.filter((m) => /waitlist/.test(m.subject)).length, 20);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99) - 1];
    console.log(`# figures: 100 registrations, SMTP 2 s/message, 25 sends in flight: answer p99 ${p99} ms, last answer ${lastAnswerAt - started} ms, last email ${lastEmailAt - started} ms`);
    smtp.behaviour.delayMs = 0;
  });

  test('an email carries the course, the status and a manage link whose token works', async () => {
    smtp.messages.length = 0;
    const course = await newCourse(server.client, { capacity: 1, title: 'Analytical Engines <101>' });
    const created = (await server.client.register(student(course, 1, 'link'))).body;
    const [message] = await smtp.waitForMessages(1);
    assert.match(message!.raw, /Analytical Engines/);
    assert.match(message!.raw, /Analytical Engines &lt;101&gt;/, 'the HTML part escapes the title');
    // Undo quoted-printable (soft line breaks, =XX escapes) to read the link as the student does.
    const decoded = message!.raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    const token = /#token=([A-Za-z0-9_%-]+)/.exec(decoded)?.[1];
    assert.ok(token, 'a manage link with its token');
    assert.equal(decodeURIComponent(token), created.manageToken);
  });

  test('every message first refused with 451 arrives exactly once after the retry', async () => {
    smtp.messages.length = 0;
    smtp.behaviour.refuseFirstAttempt = true;
    const course = await newCourse(server.client, { capacity: 20 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => server.client.register(student(course, i, 'retry'))));
    const messages = await smtp.waitForMessages(20, 60_000);
    await settle(async () => (await pendingEmailJobs()) === 0);
    const counts = byMessageId(messages);
    assert.equal(counts.size, 20);
    assert.ok([...counts.values()].every((n) => n === 1));
    for (const id of counts.keys()) assert.equal(smtp.attempts.get(id), 2, 'refused once, accepted once');
    smtp.behaviour.refuseFirstAttempt = false;
  });

  test('a 550 is marked failed, visible to the admin, and never retried', async () => {
    smtp.messages.length = 0;
    const course = await newCourse(server.client, { capacity: 5 });
    smtp.behaviour.rejectRecipients.add('bounce@example.org');
    const created = (await server.client.register({ name: 'Bounce', email: 'bounce@example.org', course })).body;
    await settle(async () => (await db.sql`SELECT 1 FROM email_deliveries d JOIN registration_events e ON e.id = d.event_id WHERE e.registration_id = ${created.id} AND d.status = 'failed'`).length === 1);
    await settle(async () => (await pendingEmailJobs()) === 0);
    const jobs = (await server.client.admin('GET', '/admin/jobs')).body;
    assert.ok(jobs.emails.failed >= 1);
    assert.ok(jobs.emails.recentFailures.some((f: { to: string; error: string }) => f.to === 'bounce@example.org' && /550/.test(f.error)));
    assert.equal(smtp.messages.length, 0);
  });

  test('the SMTP server down for seconds during registrations: everything arrives once it is back', async () => {
    smtp.messages.length = 0;
    const course = await newCourse(server.client, { capacity: 30 });
    await smtp.stop();
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => server.client.register(student(course, i, 'outage'))));
    assert.ok(answers.every((a) => a.status === 201), 'registration does not depend on the mail server');
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    await smtp.start();
    const messages = await smtp.waitForMessages(30, 90_000);
    await settle(async () => (await pendingEmailJobs()) === 0, 90_000);
    const counts = byMessageId(smtp.messages);
    assert.equal(counts.size, 30);
    assert.ok([...counts.values()].every((n) => n === 1));
    assert.equal(messages.length, 30);
  });

  test('a rolled-back registration sends nothing: a full course, and a failure at commit, after its email and webhook jobs were added', async () => {
    smtp.messages.length = 0;
    const receiver = await startWebhookReceiver();
    const hook = await server.client.admin('POST', '/webhooks', { url: receiver.url, events: ['registration.created'] });
    assert.equal(hook.status, 201);
    try {
      const course = await newCourse(server.client, { capacity: 1 });
      assert.equal((await server.client.register(student(course, 1, 'kept'))).status, 201);
      assert.equal((await server.client.register(student(course, 2, 'full'))).status, 409);
      // A deferred constraint trigger runs at COMMIT: after the registration, its event, token,
      // email job and webhook job were all written. The commit fails; all of them go.
      await db.sql.unsafe(`
        CREATE FUNCTION fail_forced() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.name = 'Forced Failure' THEN RAISE EXCEPTION 'forced failure at commit'; END IF;
          RETURN NEW;
        END $$;
        CREATE CONSTRAINT TRIGGER fail_forced AFTER INSERT ON registrations DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION fail_forced();`);
      try {
        const other = await newCourse(server.client, { capacity: 5 });
        const failed = await server.client.register({ name: 'Forced Failure', email: 'forced@example.org', course: other });
        assert.equal(failed.status, 500);
        assert.equal((await db.sql`SELECT 1 FROM registrations WHERE email = 'forced@example.org'`).length, 0);
      } finally {
        await db.sql.unsafe('DROP TRIGGER fail_forced ON registrations; DROP FUNCTION fail_forced();');
      }
      // A control registered after it: its email and webhook arrive, like the first student's; the failed one's never do.
      const control = await newCourse(server.client, { capacity: 5 });
      assert.equal((await server.client.register(student(control, 3, 'control'))).status, 201);
      await smtp.waitForMessages(2);
      await settle(async () => receiver.received.length >= 2);
      await settle(async () => (await pendingEmailJobs()) === 0);
      assert.deepEqual(smtp.messages.flatMap((m) => m.to).sort(), ['control3@example.org', 'kept1@example.org']);
      assert.deepEqual(receiver.received.map((r) => r.body.data.registration.email).sort(), ['control3@example.org', 'kept1@example.org']);
    } finally {
      await server.client.admin('DELETE', `/webhooks/${hook.body.id}`);
      await receiver.close();
    }
  });

  test('an email accepted by the server whose record fails to be written is not sent again', async () => {
    smtp.messages.length = 0;
    // The first write of this recipient's delivery record fails, as if the database blinked
    // right after the SMTP server accepted the message (a sequence: its count survives the
    // rollback of the failed write).
    await db.sql.unsafe(`
      CREATE SEQUENCE record_writes;
      CREATE FUNCTION fail_record_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.recipient = 'blink@example.org' AND nextval('record_writes') = 1 THEN RAISE EXCEPTION 'the database blinked'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_record_once BEFORE INSERT ON email_deliveries FOR EACH ROW EXECUTE FUNCTION fail_record_once();`);
    try {
      const course = await newCourse(server.client, { capacity: 5 });
      assert.equal((await server.client.register({ name: 'Blink', email: 'blink@example.org', course })).status, 201);
      await settle(async () => (await db.sql`SELECT 1 FROM email_deliveries WHERE recipient = 'blink@example.org' AND status = 'sent'`).length === 1);
      await settle(async () => (await pendingEmailJobs()) === 0);
      const [writes] = await db.sql<{ n: string }[]>`SELECT last_value::text AS n FROM record_writes`;
      assert.ok(Number(writes!.n) >= 2, 'the first record did fail, and was written again');
      assert.equal(smtp.messages.filter((m) => m.to.includes('blink@example.org')).length, 1, 'sent once');
    } finally {
      await db.sql.unsafe('DROP TRIGGER fail_record_once ON email_deliveries; DROP FUNCTION fail_record_once(); DROP SEQUENCE record_writes;');
    }
  });

  test('a mail server refusing the login (535) fails no email: it is retried, and sent once the login is mended', async () => {
    // A server that asks for a login and refuses the service's credentials until told otherwise.
    const login = { accepted: false };
    const received: string[] = [];
    const authServer = new SMTPServer({
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, callback) {
        if (!login.accepted) return callback(new Error('Authentication credentials invalid')); // answered 535
        callback(null, { user: auth.username });
      },
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          received.push(...session.envelope.rcptTo.map((r) => r.address));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => authServer.listen(0, '127.0.0.1', () => resolve()));
    const { port } = authServer.server.address() as AddressInfo;
    await runners.stop();
    runners = await startTestJobRunners(db, { smtpUrl: `smtp://registrar:wrong@127.0.0.1:${port}`, emailConcurrency: 4 });
    try {
      const course = await newCourse(server.client, { capacity: 5 });
      assert.equal((await server.client.register({ name: 'Login', email: 'login@example.org', course })).status, 201);
      // Refused: the job is kept for a retry with the 535 as its error; nothing is recorded failed.
      await settle(async () => {
        const [job] = await db.sql<{ last_error: string | null }[]>`
          SELECT j.last_error FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
          WHERE t.identifier = 'send_email' AND j.attempts >= 1 AND j.locked_at IS NULL`;
        return job?.last_error?.includes('535') ?? false;
      });
      assert.equal((await db.sql`SELECT 1 FROM email_deliveries WHERE recipient = 'login@example.org'`).length, 0, 'not failed for good');
      login.accepted = true;
      await db.sql`UPDATE graphile_worker._private_jobs SET run_at = now()`; // no waiting out the backoff
      await settle(async () => (await db.sql`SELECT 1 FROM email_deliveries WHERE recipient = 'login@example.org' AND status = 'sent'`).length === 1);
      assert.deepEqual(received, ['login@example.org']);
    } finally {
      await runners.stop();
      runners = await startTestJobRunners(db, { smtpUrl: smtp.url, emailConcurrency: 25 });
      await new Promise<void>((resolve) => authServer.close(() => resolve()));
    }
  });
});
