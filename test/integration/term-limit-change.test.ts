// A term's limit changed (PATCH /terms/{id}) while registrations decided locked first (each
// with an Idempotency-Key) race it, over real HTTP on two workers against a real PostgreSQL:
// one registration held between its read of the limit and its commit, then 600 in six waves.
// The limit in force when each registration committed is read from the rows: a trigger this
// file adds to the test database draws a value of the events' sequence inside each limit
// change, under its FOR UPDATE on the term row. A registration holds its FOR KEY SHARE on that
// row from before it reads the limit until it commits, and draws its events' ids under it, so
// the two locks put every registration wholly before a change or wholly after it, by event id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newCourse, newTerm, student } from '../support/factories.ts';
import { assertProblem, type Answer, type Client } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { untilARegistrationWaitsForALock, untilAStatementWaitsForALock } from '../support/lock-waits.ts';
import { countBy } from '../support/rush.ts';
import { startSecondWorker, type SecondWorker } from '../support/second-worker.ts';
import { useStack } from '../support/stack.ts';

let secondWorker: SecondWorker;
const stack = useStack({}, async (started) => {
  secondWorker = await startSecondWorker(started);
  await started.db.sql.unsafe(`
    CREATE TABLE test_term_limit_changes (seq bigint PRIMARY KEY, term_id text NOT NULL, max_courses_per_student integer);
    CREATE FUNCTION test_record_term_limit_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO test_term_limit_changes VALUES (nextval('registration_events_id_seq'), NEW.id, NEW.max_courses_per_student);
      RETURN NULL;
    END $$;
    CREATE TRIGGER test_record_term_limit_change AFTER UPDATE OF max_courses_per_student ON terms
      FOR EACH ROW EXECUTE FUNCTION test_record_term_limit_change();`);
});

const workers = (): Client[] => [stack.server.client, secondWorker.server.client];

/**
 * Sends every request of `requests` at once, and `change` once half of them are answered
 * (committed before it was sent), so the other half race it.
 */
async function raceAChange(requests: (() => Promise<Answer>)[], change: () => Promise<Answer>): Promise<{ answers: Answer[]; changed: Answer }> {
  let answered = 0;
  let halfway: () => void = () => undefined;
  const half = new Promise<void>((resolve) => { halfway = resolve; });
  const answers = Promise.all(requests.map((send) => send().then((answer) => {
    answered += 1;
    if (answered === Math.ceil(requests.length / 2)) halfway();
    return answer;
  })));
  const changed = half.then(change);
  return { answers: await answers, changed: await changed };
}

type Created = { eventId: number; emailKey: string; registrationId: string };
type LimitChange = { seq: number; limit: number | null };

/** The term's registrations by the id of their first history entry (none is cancelled here). */
async function createdInTerm(term: string): Promise<Created[]> {
  const rows = await stack.db.sql<{ event_id: string; email_key: string; registration_id: string; kind: string; status: string }[]>`
    SELECT DISTINCT ON (e.registration_id) e.id::text AS event_id, r.email_key, r.id AS registration_id, e.kind, r.status::text
    FROM registration_events e JOIN registrations r ON r.id = e.registration_id JOIN courses c ON c.id = r.course_id
    WHERE c.term_id = ${term} AND e.kind <> 'reminder'
    ORDER BY e.registration_id, e.id`;
  for (const row of rows) {
    assert.ok(['enrolled', 'waitlisted'].includes(row.kind), `registration ${row.registration_id} begins with ${row.kind}`);
    assert.notEqual(row.status, 'cancelled', `registration ${row.registration_id}`);
  }
  return rows.map((r) => ({ eventId: Number(r.event_id), emailKey: r.email_key, registrationId: r.registration_id })).sort((a, b) => a.eventId - b.eventId);
}

async function limitChanges(term: string): Promise<LimitChange[]> {
  const rows = await stack.db.sql<{ seq: string; max_courses_per_student: number | null }[]>`
    SELECT seq::text, max_courses_per_student FROM test_term_limit_changes WHERE term_id = ${term} ORDER BY seq`;
  return rows.map((r) => ({ seq: Number(r.seq), limit: r.max_courses_per_student }));
}

/** The limit in force for a registration whose first event has `eventId`: the last change drawn before it. */
function limitAt(eventId: number, initial: number, changes: readonly LimitChange[]): number | null {
  let limit: number | null = initial;
  for (const change of changes) if (change.seq < eventId) limit = change.limit;
  return limit;
}

test('a lowering waits for the keyed registration that read the limit before it: that one commits first, under the old limit', async () => {
  const term = await newTerm(stack.server.client, 5);
  const [first, second, third] = await Promise.all([1, 2, 3].map(() => newCourse(stack.server.client, { term })));
  assert.equal((await stack.server.client.register(student(first!, 1, 'share'))).status, 201);
  const holder = await stack.db.sql.reserve();
  try {
    // The student's term count held: the registration (locked first) has read the limit under
    // its share lock on the term and waits for the count.
    await holder`BEGIN`;
    await holder`SELECT 1 FROM term_students WHERE term_id = ${term} AND email_key = 'share1@example.org' FOR UPDATE`;
    const registered = stack.server.client.register(student(second!, 1, 'share'), { 'idempotency-key': 'share1-second' });
    await untilARegistrationWaitsForALock(stack.db.sql);
    const lowered = stack.server.client.admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: 1 });
    await untilAStatementWaitsForALock(stack.db.sql, 'UPDATE terms');
    await holder`COMMIT`;
    assert.equal((await registered).status, 201, 'decided on the limit it read, 5');
    assert.equal((await lowered).body.maxCoursesPerStudent, 1);
  } finally {
    await holder`ROLLBACK`.catch(() => undefined);
    holder.release();
  }
  const [change] = await limitChanges(term);
  const created = await createdInTerm(term);
  assert.equal(created.length, 2);
  assert.ok(created.every((r) => r.eventId < change!.seq), 'both registrations committed before the change');
  assertProblem(await stack.server.client.register(student(third!, 1, 'share'), { 'idempotency-key': 'share1-third' }), 409, 'limit-reached', 'after the lowering');
  assert.equal((await stack.server.client.admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: 5 })).status, 200);
  await assertInvariants(stack.db.sql);
});

test('a limit lowered and raised six times while 600 keyed registrations race it: no registration committed over the limit in force then', async () => {
  const initial = 4;
  const limits = [2, 7, 4, 10, 6, 14];
  const term = await newTerm(stack.server.client, initial);
  const courses = await Promise.all(Array.from({ length: 2 + 2 * limits.length }, () =>
    newCourse(stack.server.client, { capacity: 30, waitlistCapacity: 30, term })));
  const students = Array.from({ length: 50 }, (_, i) => i);
  // Every student at limit - 2 before the race.
  const held = await Promise.all(students.flatMap((i) => courses.slice(0, 2).map((course) => stack.server.client.register(student(course, i, 'near')))));
  assert.deepEqual(countBy(held, (a) => a.status), { 201: 100 });
  const heldBefore = new Set(held.map((a) => a.body.id as string));

  const answers: Answer[] = [];
  for (const [w, limit] of limits.entries()) {
    // Wave w: each student asks for two more courses, on both workers; halfway through, the change.
    const asked = courses.slice(2 + 2 * w, 4 + 2 * w);
    const requests = students.flatMap((i) => asked.map((course, c) => () =>
      workers()[(i + c) % 2]!.register(student(course, i, 'near'), { 'idempotency-key': `near${i}-${course}` })));
    const wave = await raceAChange(requests, () => stack.server.client.admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: limit }));
    assert.equal(wave.changed.status, 200, JSON.stringify(wave.changed.body));
    assert.equal(wave.changed.body.maxCoursesPerStudent, limit);
    answers.push(...wave.answers);
  }
  const statuses = countBy(answers, (a) => `${a.status} ${a.status === 201 ? '' : a.body.type}`);
  assert.equal(answers.length, 600);
  assert.deepEqual(Object.keys(statuses).sort(), ['201 ', '409 /problems/limit-reached'], JSON.stringify(statuses));

  const changes = await limitChanges(term);
  assert.deepEqual(changes.map((c) => c.limit), limits, 'one recorded change per PATCH, in order');
  const created = await createdInTerm(term);
  assert.equal(created.length, 100 + statuses['201 ']!, 'every 201 is a registration stored, and nothing else');
  const createdIds = new Set(created.map((c) => c.registrationId));
  for (const answer of answers.filter((a) => a.status === 201)) assert.ok(createdIds.has(answer.body.id), answer.body.id);

  // A student's registrations wait for each other on the student's term count, so their event
  // ids are in commit order: the n-th one committed while the student held n.
  const heldNow = new Map<string, number>();
  const over: string[] = [];
  const limitsSeen = new Set<number | null>();
  for (const registration of created) {
    const n = (heldNow.get(registration.emailKey) ?? 0) + 1;
    heldNow.set(registration.emailKey, n);
    const limit = limitAt(registration.eventId, initial, changes);
    if (!heldBefore.has(registration.registrationId)) limitsSeen.add(limit);
    if (limit !== null && n > limit) over.push(`${registration.emailKey}: registration ${n} (event ${registration.eventId}) under limit ${limit}`);
  }
  assert.deepEqual(over, [], `registrations over the limit in force when they committed:\n${over.join('\n')}`);
  // The race reached both sides of the changes: the half of wave 1 answered before the first
  // change was decided under the initial limit, and that of wave 3 under the raise to 7.
  assert.ok(limitsSeen.has(initial) && limitsSeen.has(7), `limits the race's registrations committed under: ${[...limitsSeen].join(', ')}`);
  await assertInvariants(stack.db.sql);
});
