// Faults in the middle of a rush of registrations (SPEC invariants 4, 5, 6), on one running
// service (two HTTP workers, the job worker sending to a real SMTP server that takes 50 ms per
// message), one case after the other:
//   a) SIGKILL of an HTTP worker: the supervisor replaces it;
//   b) SIGKILL of the job worker: the lease keeper frees its jobs, its replacement sends them;
//   c) SIGKILL of the embedded postmaster: the supervisor's watchdog starts it again (crash
//      recovery); meanwhile answers are 503 or dropped connections, never 500.
// After each: the service answers again and takes new registrations; every 2xx answer is a
// stored row and every stored row was answered 2xx (to the request or to its retry); retrying
// the requests that got no answer or a 503 yields the same registration, never a second one;
// the invariants hold; and every committed registration event got its email, once by
// Message-ID (a copy may arrive only with the same Message-ID).
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import postgres from 'postgres';
import { Agent } from 'undici';
import { ADMIN_HEADERS, calmRequest, type FaultService, liveJobWorkerPids, startFaultService } from '../support/fault-service.ts';
import type { TestSmtpServer } from '../support/smtp-server.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy, failureReason, isSettled, type Outcome, resendUntilSettled, send, until } from '../support/rush.ts';
import {
  collectWorkerPids, embeddedDatabaseUrl, getHealth, isAlive, REPO_DIR, type ServiceProcess, tail, waitForHealth,
} from '../support/service-process.ts';

const CAPACITY = 100;
const WAITLIST_CAPACITY = 40;
const UNIQUE_STUDENTS = 240;
/** Students sent twice at once (the second time in upper case): 300 requests per rush. */
const DUPLICATED_STUDENTS = 60;
const RUSH_SIZE = UNIQUE_STUDENTS + DUPLICATED_STUDENTS;
const EMAIL_CONCURRENCY = 8;
const SMTP_DELAY_MS = 50;
/** Emails, after a fault: a job of a killed job worker is freed after ~10 s, then retried with backoff. */
const EMAIL_DRAIN_TIMEOUT_MS = 90_000;
const RECOVERY_TIMEOUT_MS = 60_000;
/** Requests that got no answer or a 503 are sent again until answered (bounded in time). */
const RETRY_OPTIONS = { concurrency: 16, timeoutMs: 90_000, pauseMs: 1_000 };

type Body = { name: string; email: string; course: string };
type Sent = { body: Body; key: string; outcome: Outcome };
type Answered = { key: string; status: number; body: any };
const MESSAGE_ID = /^<registrar\.([0-9a-f-]{36})\.(enrolled|waitlisted|promoted|cancelled|reminder)\.(\d+)@[^>]+>$/;

let fault: FaultService | undefined;
let dataDir: string;
let baseUrl: string;
let smtp: TestSmtpServer | undefined;
let service: ServiceProcess | undefined;
let sql: postgres.Sql | undefined;
// Rush requests each on a connection of their own; calm requests (setup, checks) share a few.
const rushDispatcher = new Agent({ connections: RUSH_SIZE, pipelining: 1 });
const calmDispatcher = new Agent({ connections: 16, pipelining: 1, keepAliveTimeout: 1_000 });
/** Message copies already seen before the current case (each case accounts for its own). */
let copiesBefore = 0;

before(async () => {
  fault = await startFaultService({ name: 'crash-rush', workers: 2, emailConcurrency: EMAIL_CONCURRENCY, smtpDelayMs: SMTP_DELAY_MS });
  ({ baseUrl, dataDir, smtp, service } = fault);
  // The embedded database keeps its URL across a restart by the watchdog (same port).
  sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 2, onnotice: () => {}, connect_timeout: 5 });
});

after(async () => {
  await rushDispatcher.destroy().catch(() => undefined);
  await calmDispatcher.destroy().catch(() => undefined);
  await sql?.end({ timeout: 5 }).catch(() => undefined);
  await fault?.stop();
});

/** A calm request, retried (bounded) while the service is recovering: a network failure or a 503. */
async function calm(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = ADMIN_HEADERS): Promise<Answered & { status: number }> {
  return { key: '', ...(await calmRequest(baseUrl, method, urlPath, { dispatcher: calmDispatcher, headers, body })) };
}

async function createCourse(id: string, capacity: number, waitlistCapacity: number): Promise<void> {
  const created = await calm('POST', '/courses', { id, title: `Course ${id}`, capacity, waitlistCapacity });
  // A retry after a dropped answer finds the course made by the first attempt.
  assert.ok(created.status === 201 || (created.status === 409 && (await calm('GET', `/courses/${id}`)).status === 200), JSON.stringify(created));
}

function resend(body: Body): Promise<Outcome> {
  return send(baseUrl, 'POST', '/register', { dispatcher: calmDispatcher, body, timeoutMs: 10_000 });
}

/**
 * The rush: RUSH_SIZE registrations at once; `fault` runs (synchronously, on an answer) once
 * `faultAfter` answers are back, while the rest are in flight.
 */
async function rush(course: string, prefix: string, faultAfter: number, fault: () => void): Promise<Sent[]> {
  const bodies: { key: string; body: Body }[] = [];
  for (let i = 0; i < UNIQUE_STUDENTS; i++) {
    const email = `${prefix}${i}@example.org`;
    bodies.push({ key: email, body: { name: `Student ${prefix}${i}`, email, course } });
    if (i < DUPLICATED_STUDENTS) bodies.push({ key: email, body: { name: `Student ${prefix}${i}`, email: email.toUpperCase(), course } });
  }
  let answered = 0;
  return Promise.all(bodies.map(async ({ key, body }) => {
    const outcome = await send(baseUrl, 'POST', '/register', { dispatcher: rushDispatcher, body });
    if (++answered === faultAfter) fault();
    return { key, body, outcome };
  }));
}

/**
 * What the rush got, checked: documented statuses only (a 500 is a bug), no request without an
 * answer by the deadline, network failures only where the fault can cause them. Then every
 * request that got a 503 or no answer is retried until it gets a real one.
 */
async function settle(t: TestContext, label: string, sent: Sent[], allowNetworkFailures: boolean): Promise<Answered[]> {
  const answered = sent.filter((s) => s.outcome.ok).map((s) => ({ key: s.key, status: (s.outcome as Outcome & { ok: true }).answer.status, body: (s.outcome as Outcome & { ok: true }).answer.body }));
  const failed = sent.filter((s) => !s.outcome.ok).map((s) => (s.outcome as Outcome & { ok: false }));
  const statuses = countBy(answered, (a) => a.status);
  t.diagnostic(`${label}: rush of ${RUSH_SIZE}: ${JSON.stringify(statuses)}; no answer: ${JSON.stringify(countBy(failed, (f) => failureReason(f.error)))}`);
  assert.deepEqual(failed.filter((f) => f.timedOut).length, 0, 'a request had no answer within the 30 s deadline');
  if (!allowNetworkFailures) assert.deepEqual(failed.map((f) => failureReason(f.error)), [], 'requests dropped although no HTTP worker or database died');
  assert.deepEqual(Object.keys(statuses).filter((s) => !['200', '201', '409', '503'].includes(s)), [], `unexpected statuses ${JSON.stringify(statuses)}; output:\n${tail(service!.output(), 30)}`);
  for (const a of answered) {
    if (a.status === 409) assert.equal(a.body.type, '/problems/course-full', JSON.stringify(a.body));
    if (a.status === 503) assert.equal(a.body.type, '/problems/overloaded', JSON.stringify(a.body));
  }

  // Invariant 5: retrying a request that got no answer (or a 503) gives the same registration.
  const { settled, unsettled, rounds } = await resendUntilSettled(sent.filter((s) => !isSettled(s.outcome)), (s) => resend(s.body), RETRY_OPTIONS);
  assert.equal(unsettled.length, 0, `${unsettled.length} requests still without an answer after ${rounds} rounds of retries`);
  const retried = settled.map((s) => ({ key: s.key, status: (s.outcome as Outcome & { ok: true }).answer.status, body: (s.outcome as Outcome & { ok: true }).answer.body }));
  if (retried.length > 0) t.diagnostic(`${label}: ${retried.length} retried (${rounds} rounds): ${JSON.stringify(countBy(retried, (r) => r.status))}`);
  const all = [...answered.filter((a) => a.status !== 503), ...retried];
  assert.deepEqual(Object.keys(countBy(all, (a) => a.status)).filter((s) => !['200', '201', '409'].includes(s)), [], JSON.stringify(countBy(all, (a) => a.status)));
  for (const a of all) if (a.status === 409) assert.equal(a.body.type, '/problems/course-full', JSON.stringify(a.body));
  return all;
}

/** Every 2xx is a stored row, every stored row was answered 2xx; the course ends exactly full. */
async function assertStoredMatchesAnswers(course: string, all: Answered[]): Promise<void> {
  const stored = await until(() => sql!<{ id: string; email_key: string; status: string }[]>`SELECT id, email_key, status FROM registrations WHERE course_id = ${course}`, () => true, 'the registrations');
  const storedById = new Map(stored.map((row) => [row.id, row]));
  const created = all.filter((a) => a.status === 201);
  for (const a of created) {
    assert.equal(storedById.get(a.body.id)?.status, a.body.status, `${a.key}: answered 201 ${a.body.status}, stored ${storedById.get(a.body.id)?.status}`);
    assert.equal(storedById.get(a.body.id)?.email_key, a.key);
  }
  assert.equal(new Set(created.map((a) => a.key)).size, created.length, 'no student created twice');
  // A 200 names no registration (nothing stored is shown): it is for a student with a stored row.
  const storedKeys = new Set(stored.map((row) => row.email_key));
  assert.equal(storedKeys.size, stored.length, 'one registration per student');
  for (const a of all.filter((x) => x.status === 200)) {
    assert.deepEqual(Object.keys(a.body).sort(), ['alreadyRegistered', 'course', 'email'], `${a.key}: a 200 shows nothing stored`);
    assert.ok(storedKeys.has(a.key), `${a.key}: answered 200 but holds no registration`);
  }
  // A row nobody heard a 201 for: a request whose answer was lost; its retry got 200.
  const answeredKeys = new Set(all.filter((x) => x.status === 200 || x.status === 201).map((a) => a.key));
  assert.deepEqual([...storedKeys].sort(), [...answeredKeys].sort(), 'the stored rows are exactly the students the 2xx answers were for');
  assert.equal(stored.length, CAPACITY + WAITLIST_CAPACITY, 'demand far over capacity: every place taken, once');
  assert.equal(stored.filter((row) => row.status === 'enrolled').length, CAPACITY);
}

/**
 * Invariant 4: every committed registration event got its email, exactly one Message-ID per
 * event; copies only with the same Message-ID. Waits (bounded) for the queue to drain.
 */
async function assertEveryEventEmailedOnce(t: TestContext, label: string, maxNewCopies: number): Promise<void> {
  const startedAt = Date.now();
  const messageIds = () => new Set(smtp!.messages.map((m) => m.messageId));
  const [state] = await until(
    () => sql!<{ events: number; sent: number; failed: number; jobs: number }[]>`
      SELECT (SELECT count(*) FROM registration_events)::int AS events,
             (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent,
             (SELECT count(*) FROM email_deliveries WHERE status = 'failed')::int AS failed,
             (SELECT count(*) FROM graphile_worker._private_jobs)::int AS jobs`,
    (rows) => rows[0]!.jobs === 0 && rows[0]!.sent + rows[0]!.failed === rows[0]!.events && messageIds().size >= rows[0]!.events,
    `${label}: every email sent and recorded`, EMAIL_DRAIN_TIMEOUT_MS, 250);
  assert.equal(state!.failed, 0, 'no email failed for good');
  const events = await sql!<{ id: string; registration_id: string; kind: string }[]>`SELECT id::text, registration_id::text, kind FROM registration_events`;
  const idsPerEvent = new Map<string, Set<string>>();
  for (const m of smtp!.messages) {
    const match = MESSAGE_ID.exec(m.messageId);
    assert.ok(match, `a Message-ID of ours: ${m.messageId}`);
    idsPerEvent.set(match[3]!, (idsPerEvent.get(match[3]!) ?? new Set()).add(m.messageId));
  }
  assert.deepEqual([...idsPerEvent.keys()].sort(), events.map((e) => e.id).sort(), 'one email for each committed event, none for anything else');
  for (const e of events) {
    const ids = [...idsPerEvent.get(e.id)!];
    assert.equal(ids.length, 1, `event ${e.id}: one Message-ID, got ${ids.join(', ')}`);
    const [, registration, kind] = MESSAGE_ID.exec(ids[0]!)!;
    assert.deepEqual([registration, kind], [e.registration_id, e.kind], `event ${e.id}'s email is about its registration and kind`);
  }
  const copies = smtp!.messages.length - messageIds().size;
  t.diagnostic(`${label}: ${events.length} events so far, all emailed (${smtp!.messages.length} messages, ${copies - copiesBefore} new copies with the same Message-ID); drained ${Date.now() - startedAt} ms after the check began`);
  assert.ok(copies - copiesBefore <= maxNewCopies, `${copies - copiesBefore} copies; at most ${maxNewCopies} may arrive in this case`);
  copiesBefore = copies;
}

/** After recovery a new student registers at once (well, within the recovery bound). */
async function assertNewRegistrationSucceeds(label: string): Promise<void> {
  const id = `fresh-${label}`;
  await createCourse(id, 5, 0);
  const answer = await calm('POST', '/register', { name: 'After Recovery', email: `after-${label}@example.org`, course: id }, {});
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
}

describe('SIGKILL during a rush of registrations', { timeout: 400_000 }, () => {
  test('a) an HTTP worker: replaced; nothing answered 2xx is lost; every event emailed once', async (t) => {
    const course = 'rush-a';
    await createCourse(course, CAPACITY, WAITLIST_CAPACITY);
    const before = await collectWorkerPids(baseUrl, (pids) => pids.size >= 2);
    const victim = (await getHealth(baseUrl)).body!.pid!;
    let killedAt = 0;
    const sent = await rush(course, 'a', 20, () => {
      process.kill(victim, 'SIGKILL');
      killedAt = Date.now();
    });
    assert.ok(killedAt > 0, 'the worker was killed mid-rush');
    const replaced = await collectWorkerPids(baseUrl, (pids) => [...pids].some((pid) => !before.has(pid)), RECOVERY_TIMEOUT_MS);
    t.diagnostic(`a: worker ${victim} killed; a replacement answered /health ${Date.now() - killedAt} ms later (pids ${[...replaced].join(', ')})`);
    assert.equal(isAlive(victim), false);
    assert.ok(!replaced.has(victim));

    const all = await settle(t, 'a', sent, true);
    await assertStoredMatchesAnswers(course, all);
    await assertInvariants(sql!);
    await assertNewRegistrationSucceeds('a');
    // The job worker was not touched: no email arrives twice.
    await assertEveryEventEmailedOnce(t, 'a', 0);
  });

  test('b) the job worker: replaced, its jobs freed; every event emailed once, copies only with the same Message-ID', async (t) => {
    const course = 'rush-b';
    await createCourse(course, CAPACITY, WAITLIST_CAPACITY);
    const [jobWorker] = await until(() => liveJobWorkerPids(sql!), (pids) => pids.length === 1, 'one job worker heartbeat');
    let killedAt = 0;
    let receivedAtKill = 0;
    const receivedBefore = smtp!.messages.length;
    const kill = () => {
      if (killedAt > 0) return;
      process.kill(jobWorker!, 'SIGKILL');
      killedAt = Date.now();
      receivedAtKill = smtp!.messages.length - receivedBefore;
    };
    // The kill comes once the job worker is sending this rush's emails (or when the rush ends).
    let rushOver = false;
    const killer = (async () => {
      for (let i = 0; i < 400 && !rushOver && smtp!.messages.length - receivedBefore < 10; i++) await sleep(25);
      kill();
    })();
    const sent = await rush(course, 'b', Number.POSITIVE_INFINITY, () => {});
    rushOver = true;
    await killer;
    assert.ok(killedAt > 0);
    // Killing the job worker touches no request: every answer arrives.
    const all = await settle(t, 'b', sent, false);
    const [replacement] = await until(() => liveJobWorkerPids(sql!), (pids) => pids.length === 1 && pids[0] !== jobWorker, 'a replacement job worker', RECOVERY_TIMEOUT_MS);
    t.diagnostic(`b: job worker ${jobWorker} killed after ${receivedAtKill} of this rush's messages had arrived; replacement ${replacement} beating ${Date.now() - killedAt} ms later`);
    assert.equal(isAlive(jobWorker!), false);
    await assertStoredMatchesAnswers(course, all);
    await assertInvariants(sql!);
    await assertNewRegistrationSucceeds('b');
    // Only a message in flight at the kill may arrive again: at most one per SMTP connection.
    await assertEveryEventEmailedOnce(t, 'b', EMAIL_CONCURRENCY);
  });

  test('c) the embedded postmaster: restarted by the watchdog; 503 or dropped meanwhile, never 500', async (t) => {
    const course = 'rush-c';
    await createCourse(course, CAPACITY, WAITLIST_CAPACITY);
    const pidFile = path.join(dataDir, 'db', 'postmaster.pid');
    const postmaster = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    assert.ok(Number.isInteger(postmaster) && isAlive(postmaster), `a running postmaster in ${pidFile}`);
    let killedAt = 0;
    // While the database is down: a trickle of registrations, each answered 503 or dropped.
    const duringOutage: Sent[] = [];
    let outageOver = false;
    const trickle = (async () => {
      while (killedAt === 0) await sleep(10);
      for (let i = 0; i < 400 && !outageOver; i++) {
        const body = { name: `Outage ${i}`, email: `outage${i}@example.org`, course };
        duringOutage.push({ key: body.email, body, outcome: await send(baseUrl, 'POST', '/register', { dispatcher: calmDispatcher, body, timeoutMs: 30_000 }) });
        await sleep(100);
      }
    })();
    // This test's own connections go first: a socket the dying postmaster resets after the
    // driver let go of it would be an uncaught error in this process, not a finding.
    await sql!.end({ timeout: 5 });
    sql = undefined;
    const sent = await rush(course, 'c', 20, () => {
      process.kill(postmaster, 'SIGKILL');
      killedAt = Date.now();
    });
    assert.ok(killedAt > 0);
    try {
      await waitForHealth(baseUrl, { timeoutMs: RECOVERY_TIMEOUT_MS, service: service! });
    } finally {
      outageOver = true;
      await trickle;
      sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 2, onnotice: () => {}, connect_timeout: 5 });
    }
    const recoveredAfter = Date.now() - killedAt;
    const restarted = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    assert.notEqual(restarted, postmaster, 'a new postmaster runs');
    assert.equal(isAlive(postmaster), false);
    assert.match(service!.output(), /the embedded PostgreSQL is not running; starting it again/);
    const outageStatuses = countBy(duringOutage, (s) => (s.outcome.ok ? s.outcome.answer.status : failureReason(s.outcome.error)));
    t.diagnostic(`c: postmaster ${postmaster} killed; /health 200 again after ${recoveredAfter} ms (new postmaster ${restarted}); requests during the outage: ${JSON.stringify(outageStatuses)}`);
    if (duringOutage.some((s) => !s.outcome.ok && s.outcome.timedOut)) await keepEvidence('c', killedAt);
    for (const s of duringOutage) {
      if (!s.outcome.ok) {
        assert.equal(s.outcome.timedOut, false, `a request during the outage had no answer within 30 s (evidence in test-artifacts/)`);
        continue;
      }
      const { status, body } = s.outcome.answer;
      assert.ok([201, 200, 409, 503].includes(status), `during the outage: ${status} ${JSON.stringify(body)}`);
      if (status === 503) {
        assert.equal(body.type, '/problems/overloaded');
        assert.ok(Number(s.outcome.answer.headers.get('retry-after')) >= 1, 'a 503 carries Retry-After');
      }
    }

    const all = await settle(t, 'c', sent, true);
    // The trickle's requests are students too: settle them the same way, then account for all.
    const trickleAll = await settleQuietly(duringOutage);
    await assertStoredMatchesAnswers(course, [...all, ...trickleAll]);
    await assertInvariants(sql!);
    await assertNewRegistrationSucceeds('c');
    // A send whose outcome could not be recorded while the database was down is sent again,
    // with the same Message-ID: at most one per connection in flight.
    await assertEveryEventEmailedOnce(t, 'c', EMAIL_CONCURRENCY);
  });
});

/** On a hang: the service's output and the database's log, for whoever reads the failure. */
async function keepEvidence(label: string, killedAt: number): Promise<void> {
  const postgresLog = await readFile(path.join(dataDir, 'db', 'postgres.log'), 'utf8').catch(() => '');
  await mkdir(path.join(REPO_DIR, 'test-artifacts'), { recursive: true });
  await writeFile(path.join(REPO_DIR, 'test-artifacts', `crash-during-rush-${label}.log`),
    `postmaster killed at ${new Date(killedAt).toISOString()}\n\n${service!.output()}\n\n==== postgres.log (tail)\n${postgresLog.slice(-100_000)}`);
}

/** Retries (bounded) the trickle's requests that got no real answer; returns every real answer. */
async function settleQuietly(sent: Sent[]): Promise<Answered[]> {
  const answered = sent.filter((s) => isSettled(s.outcome));
  const { settled, unsettled } = await resendUntilSettled(sent.filter((s) => !isSettled(s.outcome)), (s) => resend(s.body), RETRY_OPTIONS);
  assert.equal(unsettled.length, 0, 'a request of the outage still without an answer');
  const done = [...answered, ...settled].map((s) => ({ key: s.key, status: (s.outcome as Outcome & { ok: true }).answer.status, body: (s.outcome as Outcome & { ok: true }).answer.body }));
  for (const a of done) assert.ok([200, 201, 409].includes(a.status), `${a.status} ${JSON.stringify(a.body)}`);
  return done;
}
