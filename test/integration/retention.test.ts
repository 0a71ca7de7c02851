// Retention (RETENTION_DAYS) on a real database and data directory: what is older than the
// retention goes, what is newer or still needed stays; and the delivery figures of /admin/jobs
// stay equal to the rows, through deliveries and through retention, at a cost that does not grow
// with the rows.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { countQueueStats, DELIVERY_FIGURES_SQL, foldDeliveryFigures, queueStats, snapshotQueueStats } from '../../src/db/queries/jobs.queries.ts';
import { createRetention } from '../../src/domain/retention.service.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { useStack } from '../support/stack.ts';

const RETENTION_DAYS = 180;

const stack = useStack({ receiver: true, runners: {} }); // the built-in mailbox
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-retention-'));
});
after(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** The delivery figures as the rows say, counted the slow way. */
async function countedFigures() {
  const [row] = await stack.db.sql<{ sent: number; failed: number; delivered: number; webhooksFailed: number; pending: number }[]>`
    SELECT (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent,
      (SELECT count(*) FROM email_deliveries WHERE status = 'failed')::int AS failed,
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered')::int AS delivered,
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'failed')::int AS "webhooksFailed",
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS pending`;
  return row!;
}

async function shownFigures() {
  const jobs = (await stack.server.client.admin('GET', '/admin/jobs')).body;
  return { sent: jobs.emails.sent, failed: jobs.emails.failed, delivered: jobs.webhooks.delivered, webhooksFailed: jobs.webhooks.failed, pending: jobs.webhooks.pending };
}

async function eventIds(registrationId: string): Promise<string[]> {
  return (await stack.db.sql<{ id: string }[]>`SELECT id::text FROM registration_events WHERE registration_id = ${registrationId}`).map((r) => r.id);
}

async function backdate(events: string[], days: number): Promise<void> {
  const age = `${days} days`;
  await stack.db.sql`UPDATE mailbox SET created_at = now() - ${age}::interval WHERE event_id = ANY (${events}::bigint[])`;
  await stack.db.sql`UPDATE email_deliveries SET updated_at = now() - ${age}::interval WHERE event_id = ANY (${events}::bigint[])`;
  await stack.db.sql`UPDATE webhook_deliveries SET created_at = now() - ${age}::interval, updated_at = now() - ${age}::interval WHERE event_id = ANY (${events}::bigint[])`;
}

async function oldFile(name: string, days: number): Promise<string> {
  const file = path.join(dataDir, 'uploads', name);
  await writeFile(file, 'name,email,course\n');
  const at = new Date(Date.now() - days * 24 * 60 * 60 * 1000);
  await utimes(file, at, at);
  return name;
}

describe('retention', () => {
  test('mailbox, delivery logs, dead jobs, cancelled tokens and finished uploads older than the retention go; the rest stays and live tokens work', async () => {
    const hook = await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['registration.created', 'registration.cancelled'] });
    assert.equal(hook.status, 201);
    stack.receiver.setSecret(hook.body.secret);
    const course = await newCourse(stack.server.client, { capacity: 5 });
    const oldLive = (await stack.server.client.register(student(course, 1, 'old'))).body;
    const newLive = (await stack.server.client.register(student(course, 2, 'new'))).body;
    const oldCancelled = (await stack.server.client.register(student(course, 3, 'gone'))).body;
    const newCancelled = (await stack.server.client.register(student(course, 4, 'recent'))).body;
    for (const r of [oldCancelled, newCancelled]) {
      assert.equal((await stack.server.client.request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })).status, 200);
    }
    // 6 events: 6 emails in the mailbox, 6 webhook deliveries delivered.
    await eventually(async () => (await countedFigures()), (f) => f.sent === 6 && f.delivered === 6);

    const oldEvents = [...await eventIds(oldLive.id), ...await eventIds(oldCancelled.id)];
    await backdate(oldEvents, RETENTION_DAYS + 1);
    await stack.db.sql`UPDATE registrations SET updated_at = now() - interval '181 days' WHERE id = ANY (${[oldLive.id, oldCancelled.id]}::uuid[])`;
    await stack.db.sql`UPDATE manage_tokens SET created_at = now() - interval '181 days' WHERE registration_id = ANY (${[oldLive.id, oldCancelled.id]}::uuid[])`;
    // A delivery still pending, however old, is its job's: it stays.
    const [pending] = await stack.db.sql<{ id: string }[]>`
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, created_at, updated_at)
      VALUES (${hook.body.id}, ${oldEvents[0]!}, 'registration.created', now() - interval '400 days', now() - interval '400 days') RETURNING id`;
    // Dead jobs (attempts used up), one old and one recent; a task no runner here knows.
    for (const age of ['181 days', '1 day']) {
      const [job] = await stack.db.sql<{ id: string }[]>`SELECT (graphile_worker.add_job('retention_probe', json_build_object('age', ${age}::text), max_attempts => 1)).id::text`;
      await stack.db.sql`UPDATE graphile_worker._private_jobs SET attempts = 1, updated_at = now() - ${age}::interval WHERE id = ${job!.id}`;
    }
    // Upload files: old and finished (or never recorded) go; still importing, recent, or not ours stay.
    await mkdir(path.join(dataDir, 'uploads'), { recursive: true });
    const running = randomUUID();
    const done = randomUUID();
    await stack.db.sql`INSERT INTO imports (id, status, file_path, file_bytes) VALUES (${running}, 'running', ${path.join(dataDir, 'uploads', `${running}.csv`)}, 18), (${done}, 'done', ${path.join(dataDir, 'uploads', `${done}.csv`)}, 18)`;
    const kept = [await oldFile(`${running}.csv`, 400), await oldFile(`${randomUUID()}.csv`, 1), await oldFile('notes.txt', 400)];
    const removed = [await oldFile(`${done}.csv`, 181), await oldFile(`${randomUUID()}.csv`, 181), await oldFile(`${randomUUID()}.csv.part`, 181)];

    const registrationsBefore = await stack.db.sql`SELECT id, status FROM registrations ORDER BY id`;
    const eventsBefore = await stack.db.sql`SELECT id FROM registration_events ORDER BY id`;
    const report = await createRetention(stack.db.sql).run({ retentionDays: RETENTION_DAYS, dataDir });

    // 2 old events each for oldCancelled (enrolled, cancelled) and 1 for oldLive.
    assert.deepEqual(report, { mailbox: 3, emailDeliveries: 3, webhookDeliveries: 3, deadJobs: 1, manageTokens: 2, uploads: 3 });
    assert.equal((await stack.db.sql`SELECT 1 FROM mailbox WHERE event_id = ANY (${oldEvents}::bigint[])`).length, 0);
    assert.equal((await stack.db.sql`SELECT 1 FROM mailbox`).length, 3, 'the newer messages stay');
    assert.equal((await stack.db.sql`SELECT 1 FROM email_deliveries`).length, 3);
    assert.deepEqual((await stack.db.sql`SELECT id FROM webhook_deliveries WHERE event_id = ANY (${oldEvents}::bigint[])`).map((r) => r['id']), [pending!.id]);
    assert.equal((await stack.db.sql`SELECT 1 FROM webhook_deliveries WHERE status = 'delivered'`).length, 3);
    assert.deepEqual((await stack.db.sql`SELECT j.payload->>'age' AS age FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'retention_probe'`).map((r) => r['age']), ['1 day']);
    const left = await readdir(path.join(dataDir, 'uploads'));
    assert.deepEqual([...left].sort(), [...kept].sort());
    assert.deepEqual(removed.filter((name) => left.includes(name)), [], 'the old finished uploads are gone');
    // Registrations and their history stay, every one.
    assert.deepEqual(await stack.db.sql`SELECT id, status FROM registrations ORDER BY id`, registrationsBefore);
    assert.deepEqual(await stack.db.sql`SELECT id FROM registration_events ORDER BY id`, eventsBefore);

    // A live registration's token works however old it is; a long-cancelled one's no longer does.
    assert.equal((await stack.server.client.request('GET', `/registrations/${oldLive.id}`, { token: oldLive.manageToken })).status, 200);
    assert.equal((await stack.server.client.request('GET', `/registrations/${newLive.id}`, { token: newLive.manageToken })).status, 200);
    assert.equal((await stack.server.client.request('GET', `/registrations/${newCancelled.id}`, { token: newCancelled.manageToken })).status, 200);
    assert.notEqual((await stack.server.client.request('GET', `/registrations/${oldCancelled.id}`, { token: oldCancelled.manageToken })).status, 200);

    // The figures follow the rows through retention, before and after the fold.
    assert.deepEqual(await shownFigures(), await countedFigures());
    await foldDeliveryFigures(stack.db.sql);
    assert.deepEqual(await shownFigures(), await countedFigures());

    // A second pass finds nothing left to do.
    assert.deepEqual(await createRetention(stack.db.sql).run({ retentionDays: RETENTION_DAYS, dataDir }), { mailbox: 0, emailDeliveries: 0, webhookDeliveries: 0, deadJobs: 0, manageTokens: 0, uploads: 0 });
  });

  test('a backlog larger than a batch is removed completely, batch after batch', async () => {
    const course = await newCourse(stack.server.client, { capacity: 1 });
    const r = (await stack.server.client.register(student(course, 1, 'bulk'))).body;
    await eventually(async () => (await stack.db.sql`SELECT 1 FROM mailbox m JOIN registration_events e ON e.id = m.event_id WHERE e.registration_id = ${r.id}`).length, (n) => n === 1);
    const [event] = await eventIds(r.id);
    // 2,500 old messages need events of their own (mailbox.event_id is unique).
    await stack.db.sql`
      WITH e AS (
        INSERT INTO registration_events (registration_id, course_id, kind, actor, reason, created_at)
        SELECT ${r.id}, ${course}, 'enrolled', 'student', 'enrolled: a seat was free', now() - interval '200 days' FROM generate_series(1, 2500) RETURNING id)
      INSERT INTO mailbox (event_id, message_id, sender, recipient, recipient_key, subject, text_body, html_body, created_at)
      SELECT id, 'bulk-' || id, 'a@localhost', 'b@localhost', 'b@localhost', 's', 't', 'h', now() - interval '200 days' FROM e`;
    const report = await createRetention(stack.db.sql).run({ retentionDays: RETENTION_DAYS, dataDir });
    assert.equal(report.mailbox, 2500);
    assert.equal((await stack.db.sql`SELECT 1 FROM mailbox WHERE event_id = ${event!}`).length, 1, 'the new message stays');
  });

  test('a live send_email job older than the retention keeps its events\' delivery records, messages and cancelled token; its retry sends nothing twice', async () => {
    const course = await newCourse(stack.server.client, { capacity: 5 });
    const live = (await stack.server.client.register(student(course, 1, 'job-live'))).body;
    const cancelled = (await stack.server.client.register(student(course, 2, 'job-cancel'))).body;
    const gone = (await stack.server.client.register(student(course, 3, 'job-gone'))).body;
    for (const r of [cancelled, gone]) {
      assert.equal((await stack.server.client.request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })).status, 200);
    }
    const held = [...await eventIds(live.id), ...await eventIds(cancelled.id)];
    const old = await eventIds(gone.id);
    const sentOf = async (events: string[]) => (await stack.db.sql`SELECT 1 FROM email_deliveries WHERE status = 'sent' AND event_id = ANY (${events}::bigint[])`).length;
    await eventually(() => sentOf([...held, ...old]), (n) => n === 5);
    await eventually(async () => (await stack.db.sql`SELECT 1 FROM graphile_worker.jobs WHERE task_identifier = 'send_email'`).length, (n) => n === 0);

    // The job of a group commit queued 3 days ago (with the cancel, in its transaction), one of its
    // emails answered 4xx since: it retries tomorrow, and holds the emails sent 2.5 days ago.
    const tokens = new Map([[live.id, live.manageToken], [cancelled.id, cancelled.manageToken]]);
    const payload = (await stack.db.sql<{ id: string; registration_id: string }[]>`
      SELECT id::text, registration_id::text FROM registration_events WHERE id = ANY (${held}::bigint[]) ORDER BY id`)
      .map((e) => ({ eventId: e.id, manageToken: tokens.get(e.registration_id)! }));
    const job = await stack.db.sql.begin(async (tx) => {
      const [row] = await tx<{ id: string }[]>`
        SELECT (graphile_worker.add_job('send_email', ${JSON.stringify(payload)}::text::json, run_at => now() + interval '1 day', max_attempts => 25)).id::text`;
      await tx`UPDATE graphile_worker._private_jobs SET attempts = 3, created_at = now() - interval '3 days' WHERE id = ${row!.id}`;
      await tx`UPDATE registrations SET updated_at = now() - interval '3 days' WHERE id = ${cancelled.id}`;
      return row!.id;
    });
    await backdate(held, 2.5);
    await backdate(old, 5);
    await stack.db.sql`UPDATE registrations SET updated_at = now() - interval '5 days' WHERE id = ${gone.id}`;
    const messagesOf = async (events: string[]) => (await stack.db.sql`SELECT id::text, event_id::text FROM mailbox WHERE event_id = ANY (${events}::bigint[]) ORDER BY id`).map((r) => `${r['event_id']}:${r['id']}`);
    const messages = await messagesOf(held);
    assert.equal(messages.length, 3);
    const tokenWorks = async (r: { id: string; manageToken: string }) => (await stack.server.client.request('GET', `/registrations/${r.id}`, { token: r.manageToken })).status === 200;

    await createRetention(stack.db.sql).run({ retentionDays: 1, dataDir });
    assert.equal(await sentOf(held), 3, 'the job\'s events keep their delivery records');
    assert.deepEqual(await messagesOf(held), messages, 'and their messages');
    assert.ok(await tokenWorks(cancelled), 'the cancel email still to be sent links to a working token');
    // What is older than the job goes as ever.
    assert.equal(await sentOf(old), 0);
    assert.deepEqual(await messagesOf(old), []);
    assert.ok(!await tokenWorks(gone));

    // On its last attempt the job is locked with attempts = max_attempts: still live.
    await stack.db.sql`UPDATE graphile_worker._private_jobs SET attempts = 25, locked_at = now() WHERE id = ${job}`;
    await createRetention(stack.db.sql).run({ retentionDays: 1, dataDir });
    assert.equal(await sentOf(held), 3);
    assert.ok(await tokenWorks(cancelled));

    // The retry runs: every email of the job is already sent, so none goes again.
    await stack.db.sql`UPDATE graphile_worker._private_jobs SET attempts = 3, locked_at = NULL, run_at = now() WHERE id = ${job}`;
    await eventually(async () => await stack.db.sql`SELECT attempts, last_error, run_at, locked_at, is_available FROM graphile_worker._private_jobs WHERE id = ${job}`, (rows) => rows.length === 0);
    assert.deepEqual(await messagesOf(held), messages, 'no second message');

    // The job done, its rows are past the retention like any other.
    await createRetention(stack.db.sql).run({ retentionDays: 1, dataDir });
    assert.equal(await sentOf(held), 0);
    assert.deepEqual(await messagesOf(held), []);
    assert.ok(!await tokenWorks(cancelled));
    assert.ok(await tokenWorks(live), 'a live registration\'s token stays');
  });
});

describe('delivery figures', () => {
  test('figures shown by /admin/jobs equal the rows after a run of deliveries, a failure and a webhook removed', async () => {
    const hook = await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['registration.created'] });
    stack.receiver.setSecret(hook.body.secret);
    const course = await newCourse(stack.server.client, { capacity: 30 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => stack.server.client.register(student(course, i, 'fig'))));
    await eventually(async () => (await stack.db.sql`SELECT 1 FROM graphile_worker.jobs WHERE task_identifier IN ('send_email', 'deliver_webhook')`).length, (n) => n === 0);
    // A failure recorded by hand, as the email task records a refused address.
    const [event] = await stack.db.sql<{ id: string }[]>`SELECT e.id::text FROM registration_events e LEFT JOIN email_deliveries d ON d.event_id = e.id WHERE d.event_id IS NULL LIMIT 1`;
    if (event) await stack.db.sql`INSERT INTO email_deliveries (event_id, recipient, message_id, status, attempts, last_error) VALUES (${event.id}, 'x@example.org', 'm', 'failed', 1, '550')`;
    const counted = await countedFigures();
    assert.ok(counted.sent >= 30 && counted.delivered >= 30);
    assert.deepEqual(await shownFigures(), counted);
    // Removing a webhook removes its log (ON DELETE CASCADE): the figures follow.
    await stack.server.client.admin('DELETE', `/webhooks/${hook.body.id}`);
    assert.deepEqual(await shownFigures(), await countedFigures());
    await foldDeliveryFigures(stack.db.sql);
    assert.deepEqual(await shownFigures(), await countedFigures());
  });

  test('reading the figures touches as many buffers with 100,000 delivery rows as with a handful', async () => {
    await foldDeliveryFigures(stack.db.sql);
    const buffers = async () => {
      const [row] = await stack.db.sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${DELIVERY_FIGURES_SQL}`);
      const plan = (row!['QUERY PLAN'] as { Plan: Record<string, number> }[])[0]!.Plan;
      return plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!;
    };
    const few = await buffers();
    const course = await newCourse(stack.server.client, { capacity: 1 });
    const r = (await stack.server.client.register(student(course, 1, 'many'))).body;
    const [hook] = await stack.db.sql<{ id: string }[]>`INSERT INTO webhooks (url, events, secret) VALUES ('http://127.0.0.1:9/', '{}', 'whsec_x') RETURNING id`;
    await stack.db.sql`
      WITH e AS (
        INSERT INTO registration_events (registration_id, course_id, kind, actor, reason)
        SELECT ${r.id}, ${course}, 'enrolled', 'student', 'enrolled: a seat was free' FROM generate_series(1, 100000) RETURNING id
      ), d AS (
        INSERT INTO email_deliveries (event_id, recipient, message_id, status, attempts)
        SELECT id, 'x@example.org', 'm-' || id, CASE WHEN id % 10 = 0 THEN 'failed' ELSE 'sent' END, 1 FROM e RETURNING event_id
      )
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, status)
      SELECT ${hook!.id}, event_id, 'registration.created', CASE WHEN event_id % 3 = 0 THEN 'pending' ELSE 'delivered' END FROM d`;
    await stack.db.sql`ANALYZE email_deliveries`;
    await stack.db.sql`ANALYZE webhook_deliveries`;
    assert.deepEqual(await shownFigures(), await countedFigures(), 'exact before the fold');
    await foldDeliveryFigures(stack.db.sql);
    assert.deepEqual(await shownFigures(), await countedFigures(), 'exact after the fold');
    const many = await buffers();
    // Counting the rows, as a figure would by count(*), reads hundreds of pages: the test can tell.
    const [counting] = await stack.db.sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM email_deliveries WHERE status = 'sent'`);
    const countPlan = (counting!['QUERY PLAN'] as { Plan: Record<string, number> }[])[0]!.Plan;
    assert.ok(countPlan['Shared Hit Blocks']! + countPlan['Shared Read Blocks']! > 100, 'count(*) over 100,000 rows reads many pages');
    assert.ok(many <= few + 4, `the figures read ${many} buffers with 100,000 rows, ${few} with a handful`);
  });

  test('the queue figures are counted once into a snapshot that every reader shares; a stale one is not trusted', async () => {
    const probe = async (read: typeof queueStats) => (await read(stack.db.sql)).find((row) => row.task === 'figure_probe');
    const addJob = () => stack.db.sql`SELECT graphile_worker.add_job('figure_probe', '{}'::json, run_at => now() + interval '1 hour')`;
    for (let i = 0; i < 3; i += 1) await addJob();
    await snapshotQueueStats(stack.db.sql);
    assert.deepEqual(await probe(queueStats), await probe(countQueueStats));
    assert.equal((await probe(queueStats))?.queued, 3);
    await addJob();
    assert.equal((await probe(queueStats))?.queued, 3, 'read from the snapshot, not counted');
    await snapshotQueueStats(stack.db.sql);
    assert.equal((await probe(queueStats))?.queued, 4);
    await stack.db.sql`UPDATE queue_figures SET taken_at = now() - interval '1 minute'`;
    await addJob();
    assert.equal((await probe(queueStats))?.queued, 5, 'no fresh snapshot: counted');
  });
});
