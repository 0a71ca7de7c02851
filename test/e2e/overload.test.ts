// Overload (SPEC invariant 7): the real service (supervisor, two HTTP workers with two database
// connections each, a database backlog bound of 5) is sent far more registrations at once than
// it admits, each on its own connection. Every request gets a fast, well-formed answer (201, 200,
// 409 course-full or 503 overloaded with Retry-After), none hangs, and afterwards the database
// holds exactly what the 2xx answers said: each 201 stored with its status, nothing else stored.
// Retrying the shed requests then fills the course exactly, with no student registered twice.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import postgres from 'postgres';
import { Agent } from 'undici';
import { newCourse } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy, failureReason, isSettled, type Outcome, REQUEST_DEADLINE_MS, resendUntilSettled, send } from '../support/rush.ts';
import {
  embeddedDatabaseUrl, findSupervisorPid, freePort, killProcessGroup, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, tail, waitForHealth,
} from '../support/service-process.ts';

const CAPACITY = 300;
const WAITLIST_CAPACITY = 100;
const UNIQUE_STUDENTS = 1300;
/** Students sent twice at once, the second time spelled in another case with spaces around. */
const DUPLICATED_STUDENTS = 200;
const TOTAL = UNIQUE_STUDENTS + DUPLICATED_STUDENTS;
/** After the rush: shed requests are retried this many at a time, until answered (bounded in time). */
const RETRY_CONCURRENCY = 12;
const RETRY_TIMEOUT_MS = 150_000;

type Body = { name: string; email: string; course: string };
type Sent = { body: Body; key: string; outcome: Outcome };
type Registration = { id: string; email: string; status: 'enrolled' | 'waitlisted'; waitlistPosition: number | null };

let dataDir: string;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
let sql: postgres.Sql | undefined;
// Every request of the rush on a connection of its own, so they are all in flight together.
const rushDispatcher = new Agent({ connections: TOTAL, pipelining: 1, connect: { timeout: REQUEST_DEADLINE_MS } });

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-overload-'));
});

after(async () => {
  await rushDispatcher.destroy().catch(() => undefined);
  await sql?.end({ timeout: 5 }).catch(() => undefined);
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid, timeoutMs: 30_000 }).catch(() => killProcessGroup(service));
  killProcessGroup(service);
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

/** A deterministic shuffle (xorshift32): duplicates and newcomers arrive interleaved. */
function shuffle<T>(items: T[], seed: number): T[] {
  let state = seed >>> 0 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function assertOverloadedProblem(outcome: Outcome & { ok: true }): void {
  const { answer } = outcome;
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, 'a 503 is a problem+json');
  assert.equal(answer.body.type, '/problems/overloaded', JSON.stringify(answer.body));
  assert.equal(answer.body.status, 503);
  const retryAfter = Number(answer.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `a 503 carries Retry-After in seconds, got ${answer.headers.get('retry-after')}`);
}

test('far more registrations at once than the service admits: fast 503s, no hang, the database matches the 2xx answers', { timeout: 300_000 }, async (t) => {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  service = spawnService({
    via: 'node',
    env: {
      WORKERS: '2',
      DATABASE_POOL_SIZE: '2',
      MAX_DATABASE_BACKLOG: '5',
      // The whole rush comes from one client address: not what is under test here.
      RATE_LIMIT_PER_MINUTE: '0',
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
    },
  });
  const startedAt = Date.now();
  await waitForHealth(baseUrl, { timeoutMs: 90_000, service });
  t.diagnostic(`service up in ${Date.now() - startedAt} ms`);
  supervisorPid = await findSupervisorPid(service);
  sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 2, onnotice: () => {} });
  const client = new Client(baseUrl);
  const course = await newCourse(client, { capacity: CAPACITY, waitlistCapacity: WAITLIST_CAPACITY });

  const bodies: { body: Body; key: string }[] = [];
  for (let i = 0; i < UNIQUE_STUDENTS; i++) {
    const email = `overload${i}@example.org`;
    bodies.push({ key: email, body: { name: `Student ${i}`, email, course } });
  }
  for (let i = 0; i < DUPLICATED_STUDENTS; i++) {
    const email = `overload${i}@example.org`;
    bodies.push({ key: email, body: { name: `Student ${i}`, email: `  ${email.toUpperCase()} `, course } });
  }
  shuffle(bodies, 0x5eed);

  // The rush: every request at once.
  const rushStartedAt = Date.now();
  const rush: Sent[] = await Promise.all(bodies.map(async ({ body, key }) => ({
    body, key, outcome: await send(baseUrl, 'POST', '/register', { dispatcher: rushDispatcher, body }),
  })));

  const answered = rush.filter((r): r is Sent & { outcome: Outcome & { ok: true } } => r.outcome.ok);
  const failed = rush.filter((r) => !r.outcome.ok);
  const statuses = countBy(answered, (r) => r.outcome.answer.status);
  const slowest = Math.max(...rush.map((r) => r.outcome.elapsedMs));
  t.diagnostic(`rush of ${TOTAL}: ${JSON.stringify(statuses)}; network failures: ${JSON.stringify(countBy(failed, (r) => failureReason((r.outcome as { error: Error }).error)))}; slowest answer ${Math.round(slowest)} ms; rush took ${Date.now() - rushStartedAt} ms`);

  // None hangs: every request got an answer before its deadline (the service's 30 s requestTimeout).
  const timedOut = failed.filter((r) => !r.outcome.ok && r.outcome.timedOut).length;
  assert.equal(timedOut, 0, `${timedOut} requests had no answer within ${REQUEST_DEADLINE_MS} ms`);
  // Overload degrades to answers, not to dropped connections.
  assert.deepEqual(failed.map((r) => !r.outcome.ok && failureReason(r.outcome.error)), [], 'requests that got no HTTP answer at all');

  // Only the documented answers; each error a problem of its kind.
  assert.deepEqual(Object.keys(statuses).filter((s) => !['200', '201', '409', '503'].includes(s)), [], `unexpected statuses: ${JSON.stringify(statuses)}\n${tail(service.output(), 20)}`);
  for (const r of answered) {
    const { answer } = r.outcome;
    if (answer.status === 409) assert.equal(answer.body.type, '/problems/course-full', JSON.stringify(answer.body));
    if (answer.status === 503) assertOverloadedProblem(r.outcome);
  }
  assert.ok((statuses[503] ?? 0) > 0, `the service shed nothing of ${TOTAL} requests at once: ${JSON.stringify(statuses)}`);

  // The database holds exactly what the 2xx answers said.
  const created = answered.filter((r) => r.outcome.answer.status === 201).map((r) => ({ key: r.key, registration: r.outcome.answer.body as Registration }));
  const stored = await sql<{ id: string; email_key: string; status: string }[]>`SELECT id, email_key, status FROM registrations WHERE course_id = ${course}`;
  const storedById = new Map(stored.map((row) => [row.id, row]));
  for (const { key, registration } of created) {
    const row = storedById.get(registration.id);
    assert.ok(row, `registration ${registration.id} was answered 201 but is not stored`);
    assert.equal(row.status, registration.status, `registration ${registration.id} is stored with the status it was answered`);
    assert.equal(row.email_key, key);
  }
  assert.deepEqual(stored.map((row) => row.id).sort(), created.map((c) => c.registration.id).sort(), 'the stored rows are exactly the registrations answered 201');
  // A 200 is for a student a 201 created, and shows nothing stored.
  const createdByKey = new Map(created.map((c) => [c.key, c.registration.id]));
  for (const r of answered.filter((a) => a.outcome.answer.status === 200)) {
    assert.ok(createdByKey.has(r.key), `the 200 for ${r.key} is for a student registered already`);
    assert.deepEqual(Object.keys(r.outcome.answer.body).sort(), ['alreadyRegistered', 'course', 'email']);
  }
  assert.equal(new Set(created.map((c) => c.key)).size, created.length, 'one 201 per student');
  // Seats first, then the waitlist, in answer order: the counts follow from the number created.
  const enrolled = created.filter((c) => c.registration.status === 'enrolled').length;
  assert.equal(enrolled, Math.min(created.length, CAPACITY));
  assert.equal(created.length - enrolled, Math.max(0, created.length - CAPACITY));
  if ((statuses[409] ?? 0) > 0) assert.equal(created.length, CAPACITY + WAITLIST_CAPACITY, 'course-full only once every place was taken');
  await assertInvariants(sql);
  const [events] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registration_events WHERE course_id = ${course} AND kind <> 'reminder'`;
  assert.equal(events!.n, created.length, 'one event (one email) per registration created, none for a refused or shed request');

  // Retrying the shed requests (after the Retry-After) ends as if there had been no overload:
  // every place taken once, no student twice, each retry of a placed student gets its registration.
  const retryAfterMs = 1000 * Math.max(1, ...answered.filter((r) => r.outcome.answer.status === 503).map((r) => Number(r.outcome.answer.headers.get('retry-after'))));
  const retryStartedAt = Date.now();
  await sleep(retryAfterMs);
  const { settled: retried, unsettled, rounds } = await resendUntilSettled(rush.filter((r) => !isSettled(r.outcome)),
    (r) => send(baseUrl, 'POST', '/register', { dispatcher: rushDispatcher, body: r.body }), { concurrency: RETRY_CONCURRENCY, timeoutMs: RETRY_TIMEOUT_MS, pauseMs: retryAfterMs });
  assert.equal(unsettled.length, 0, `${unsettled.length} requests still shed after ${rounds} rounds of ${RETRY_CONCURRENCY} at a time`);
  t.diagnostic(`retried ${retried.length} shed requests, ${RETRY_CONCURRENCY} at a time, in ${rounds} round(s), ${Date.now() - retryStartedAt} ms: ${JSON.stringify(countBy(retried, (r) => (r.outcome.ok ? r.outcome.answer.status : 'failed')))}`);
  const all = [...answered.filter((r) => r.outcome.answer.status !== 503), ...retried].map((r) => ({ key: r.key, answer: (r.outcome as Outcome & { ok: true }).answer }));
  assert.deepEqual(Object.keys(countBy(all, (r) => r.answer.status)).filter((s) => !['200', '201', '409'].includes(s)), []);
  const allCreated = all.filter((r) => r.answer.status === 201);
  assert.equal(allCreated.length, CAPACITY + WAITLIST_CAPACITY, 'every place taken exactly once in the end');
  assert.equal(new Set(allCreated.map((r) => r.key)).size, allCreated.length, 'no student created twice');
  const finalRows = await sql<{ id: string }[]>`SELECT id FROM registrations WHERE course_id = ${course}`;
  assert.deepEqual(finalRows.map((row) => row.id).sort(), allCreated.map((r) => r.answer.body.id as string).sort());
  const finalById = new Map(allCreated.map((r) => [r.key, r.answer.body.id as string]));
  for (const r of all.filter((a) => a.answer.status === 200)) assert.ok(finalById.has(r.key) && r.answer.body.alreadyRegistered === true, `the 200 for ${r.key} is for a student registered`);
  await assertInvariants(sql);
  const [course_] = await sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
  assert.deepEqual({ ...course_ }, { enrolled: CAPACITY, waitlisted: WAITLIST_CAPACITY });
});
