// A client that gives up and retries never gets a second registration, even when its first
// attempt commits after it gave up: the retry with the same Idempotency-Key gets 409 while the
// first is still running, then the first's own 201; without a key, the same email gets 200.
// On a course known full, a keyed request is refused from memory like one without a key, unless
// its key has a stored answer (replayed: a 201 keeps its token) or is in progress.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configureFullCourses, fullCoursesOf, observeFastRefusals } from '../../src/domain/full-courses.ts';
import { deleteExpiredIdempotencyKeys } from '../../src/domain/retention.service.ts';
import { hashIdempotencyKey } from '../../src/security/tokens.ts';
import { newCourse, student } from '../support/factories.ts';
import { useStack } from '../support/stack.ts';

/** Registrations refused from memory (what registrar_fast_refusals_total counts). */
let refusedFast = 0;
const stack = useStack({}, async ({ db }) => {
  // A course known full stays so for a minute in this file: the tests do not depend on timing
  // (set before the first registration, which makes the pool's full-course memory).
  configureFullCourses(db.sql, { recheckMs: 60_000 });
  observeFastRefusals(db.sql, () => { refusedFast += 1; });
  // Makes the registration of "Slow Student" take a second inside its transaction.
  await db.sql.unsafe(`
    CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.name LIKE 'Slow Student%' THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$;
    CREATE TRIGGER slow_commit AFTER INSERT ON registrations FOR EACH ROW EXECUTE FUNCTION slow_commit();`);
});

async function registerGivingUp(body: object, headers: Record<string, string>, afterMs: number): Promise<'gave up' | number> {
  try {
    const answer = await fetch(`${stack.server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(afterMs) });
    return answer.status;
  } catch {
    return 'gave up';
  }
}

test('a retry with the same Idempotency-Key after a timeout: 409 while the first runs, then its 201; one registration', async () => {
  const course = await newCourse(stack.server.client, { capacity: 5 });
  const body = { name: 'Slow Student', email: 'slow@example.org', course };
  const headers = { 'idempotency-key': `retry-${course}` };
  assert.equal(await registerGivingUp(body, headers, 200), 'gave up');
  const early = await stack.server.client.register(body, headers);
  assert.equal(early.status, 409, 'the first attempt is still being handled');
  assert.equal(early.body.type, '/problems/conflict');
  let answer = early;
  for (let i = 0; i < 50 && answer.status === 409; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await stack.server.client.register(body, headers);
  }
  assert.equal(answer.status, 201, 'the first attempt committed after the client gave up: its 201 is replayed');
  assert.equal(typeof answer.body.manageToken, 'string');
  const rows = await stack.db.sql`SELECT id FROM registrations WHERE course_id = ${course}`;
  assert.deepEqual(rows.map((r) => r.id), [answer.body.id]);
});

test('a retry without a key after a timeout finds the same registration by email (200)', async () => {
  const course = await newCourse(stack.server.client, { capacity: 5 });
  const body = { name: 'Slow Student 2', email: 'slow2@example.org', course };
  assert.equal(await registerGivingUp(body, {}, 200), 'gave up');
  let answer = await stack.server.client.register(body);
  for (let i = 0; i < 50 && answer.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await stack.server.client.register(body);
  }
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { course, email: body.email, alreadyRegistered: true });
  const rows = await stack.db.sql`SELECT id FROM registrations WHERE course_id = ${course}`;
  assert.equal(rows.length, 1);
});

/** A course with one seat, taken, that this process knows full (trusted for a minute: no timing). */
async function fullCourse(): Promise<{ course: string; first: { id: string; manageToken: string } }> {
  const course = await newCourse(stack.server.client, { capacity: 1, waitlistCapacity: 0 });
  const first = await stack.server.client.register(student(course, 0), { 'idempotency-key': `first-${course}` });
  assert.equal(first.status, 201);
  assert.equal((await stack.server.client.register(student(course, 1))).status, 409); // the database says full: marked
  return { course, first: first.body };
}

async function nextTransactionId(): Promise<bigint> {
  // The next id to be assigned, read without assigning one.
  const [row] = await stack.db.sql<{ xid: string }[]>`SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid`;
  return BigInt(row!.xid);
}

test('on a course known full, keyed requests are refused 409 from memory: no course lock, no transaction, no stored key', async () => {
  const { course } = await fullCourse();
  const [before_] = await stack.db.sql<{ xmax: string }[]>`SELECT xmax::text FROM courses WHERE id = ${course}`;
  const refusedBefore = refusedFast;
  const xidBefore = await nextTransactionId();
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    stack.server.client.register(student(course, 100 + i), { 'idempotency-key': `full-${course}-${i}` })));
  assert.deepEqual([...new Set(answers.map((a) => `${a.status} ${a.body.type}`))], ['409 /problems/course-full']);
  assert.equal(refusedFast - refusedBefore, 50, 'every one refused without going to the database');
  const [after_] = await stack.db.sql<{ xmax: string }[]>`SELECT xmax::text FROM courses WHERE id = ${course}`;
  assert.equal(after_!.xmax, before_!.xmax, 'nobody locked the course row (a row lock writes its xmax)');
  // Each keyed request of the usual path writes its key row: a transaction id each. Here none
  // (the margin is for anything else on the server meanwhile).
  assert.ok((await nextTransactionId()) - xidBefore < 10n, 'no transaction id assigned per request');
  const [ours] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
  assert.equal(ours!.n, 1);
});

test('on a course since full, a keyed replay of its 201 still gets the 201 with its token; a keyed duplicate gets 200', async () => {
  const { course, first } = await fullCourse();
  const refusedBefore = refusedFast;
  const replay = await stack.server.client.register(student(course, 0), { 'idempotency-key': `first-${course}` });
  assert.equal(replay.status, 201, JSON.stringify(replay.body));
  assert.equal(replay.body.id, first.id);
  assert.equal(replay.body.manageToken, first.manageToken);
  const duplicate = await stack.server.client.register(student(course, 0), { 'idempotency-key': `again-${course}` });
  assert.equal(duplicate.status, 200, JSON.stringify(duplicate.body));
  assert.deepEqual(duplicate.body, { course, email: student(course, 0).email, alreadyRegistered: true });
  const duplicateReplay = await stack.server.client.register(student(course, 0), { 'idempotency-key': `again-${course}` });
  assert.equal(duplicateReplay.status, 200, 'a replay of an original 200 gets that 200');
  assert.deepEqual(duplicateReplay.body, duplicate.body);
  assert.equal(refusedFast, refusedBefore, 'none of them refused from memory');
});

test('on a course known full, keyed duplicates of a registered student get 200 from a read: no course lock, no transaction, no stored key', async () => {
  const { course, first } = await fullCourse();
  // Reminded just now: no reminder is due, so the duplicates write nothing at all.
  await stack.db.sql`UPDATE registrations SET reminded_at = now() WHERE id = ${first.id}`;
  const [before_] = await stack.db.sql<{ xmax: string }[]>`SELECT xmax::text FROM courses WHERE id = ${course}`;
  const refusedBefore = refusedFast;
  const xidBefore = await nextTransactionId();
  const keys = Array.from({ length: 50 }, (_, i) => `dup-${course}-${i}`);
  const answers = await Promise.all(keys.map((key) => stack.server.client.register(student(course, 0), { 'idempotency-key': key })));
  for (const answer of answers) {
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { course, email: student(course, 0).email, alreadyRegistered: true });
  }
  const [after_] = await stack.db.sql<{ xmax: string }[]>`SELECT xmax::text FROM courses WHERE id = ${course}`;
  assert.equal(after_!.xmax, before_!.xmax, 'nobody locked the course row (a row lock writes its xmax)');
  // The usual path stores each key's 200: a transaction id each. Here none (the margin is for
  // anything else on the server meanwhile).
  assert.ok((await nextTransactionId()) - xidBefore < 10n, 'no transaction id assigned per request');
  const hashes = keys.map((key) => hashIdempotencyKey(key).toString('hex'));
  const stored = await stack.db.sql`SELECT 1 FROM idempotency_keys WHERE encode(key_hash, 'hex') = ANY (${hashes}::text[])`;
  assert.equal(stored.length, 0, 'no key stored for a 200');
  assert.equal(refusedFast, refusedBefore, 'answered, not refused');
  // A replay of one of them: the same 200.
  const replay = await stack.server.client.register(student(course, 0), { 'idempotency-key': keys[0]! });
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.body, answers[0]!.body);
});

test('on a course known full, a retry whose key is still in progress gets 409 in progress, then the original 201', async () => {
  const course = await newCourse(stack.server.client, { capacity: 1, waitlistCapacity: 0 });
  const body = { name: 'Slow Student 3', email: 'slow3@example.org', course };
  const headers = { 'idempotency-key': `slow-full-${course}` };
  assert.equal(await registerGivingUp(body, headers, 200), 'gave up');
  fullCoursesOf(stack.db.sql).markFull(course); // as if another request had just been refused
  const early = await stack.server.client.register(body, headers);
  assert.equal(early.status, 409);
  assert.equal(early.body.type, '/problems/conflict', 'in progress, not course-full: its first attempt may take the seat');
  let answer = early;
  for (let i = 0; i < 50 && answer.status === 409; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await stack.server.client.register(body, headers);
  }
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  assert.equal(typeof answer.body.manageToken, 'string');
});

test('keys are kept 48 hours, then deleted by housekeeping', async () => {
  const course = await newCourse(stack.server.client, { capacity: 5 });
  assert.equal((await stack.server.client.register({ name: 'Kept', email: 'kept@example.org', course }, { 'idempotency-key': `kept-${course}` })).status, 201);
  assert.equal((await stack.server.client.register({ name: 'Old', email: 'old@example.org', course }, { 'idempotency-key': `old-${course}` })).status, 201);
  await stack.db.sql`UPDATE idempotency_keys SET created_at = now() - interval '49 hours' WHERE created_at = (SELECT max(created_at) FROM idempotency_keys)`;
  await stack.db.sql`UPDATE idempotency_keys SET created_at = now() - interval '47 hours' WHERE created_at > now() - interval '1 minute'`;
  const before_ = (await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`)[0]!.n;
  assert.equal(await deleteExpiredIdempotencyKeys(stack.db.sql), 1);
  assert.equal((await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`)[0]!.n, before_ - 1);
});
