// An HTTP worker's memory of waiting places (src/domain/queue-place-memory.ts), over real HTTP
// and a real PostgreSQL: a waiting place is answered without a read, with the same position,
// ahead and estimate a read gives; and a change the memory is not told of shows within the
// second it trusts a view: once its view is older than that, and at once from a view that saw
// the change (the course's count of places gone moved). Two such changes, one test each: a
// leave through another process, and a sell-out that was over before any view saw it. Overloaded,
// the load shedder lets a student's read of their own remembered place through, and no other.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { enableQueuePlaceMemory, type QueueView, queuePlaceMemoryOf } from '../../src/domain/queue-place-memory.ts';
import { eventually } from '../support/eventually.ts';
import { assertProblem, startTestServer } from '../support/http.ts';
import { useStack } from '../support/stack.ts';
import { future, type Joined, queuedCourseHelpers } from '../support/queued-course.ts';

const stack = useStack({ poolSize: 10 }, (stack) => enableQueuePlaceMemory(stack.db.sql));
const { queuedCourse, joinAll, place, open, register } = queuedCourseHelpers(stack);

/** Longer than the view is trusted (VIEW_TRUSTED_MS, 1 s). */
const PAST_TRUST_MS = 1_200;

/** The place as the database reads it now. */
async function stored(j: Joined): Promise<{ status: string; position: number | null; ahead: number | null; estimated_wait_seconds: number | null }> {
  const [row] = await stack.db.sql<{ place: any }[]>`SELECT registrar_queue_place(${j.id}) AS place`;
  return row!.place;
}

/**
 * Reads every place, waits for the view's refresh and reads them twice more: the second reads
 * remember the waiting places with a view, the third (answered) come from memory for them.
 */
async function readThrice(joined: Joined[]): Promise<any[]> {
  await Promise.all(joined.map((j) => place(j)));
  await sleep(600);
  await Promise.all(joined.map((j) => place(j)));
  return Promise.all(joined.map(async (j) => (await place(j)).body));
}

/** The place is answered from memory: a name changed behind its back (no process writes one) is not seen. */
async function assertAnsweredFromMemory(j: Joined): Promise<void> {
  const [row] = await stack.db.sql<{ name: string }[]>`SELECT name FROM queue_places WHERE id = ${j.id}`;
  await stack.db.sql`UPDATE queue_places SET name = 'Changed behind the memory' WHERE id = ${j.id}`;
  try {
    assert.equal((await place(j)).body.name, row!.name, `${j.email} answered from memory`);
  } finally {
    await stack.db.sql`UPDATE queue_places SET name = ${row!.name} WHERE id = ${j.id}`;
  }
}

/**
 * Reads `bystander` (a read asks for a view once the last is 500 ms old) until the memory holds
 * a view read after this call began: it has seen every change committed before the call.
 */
function viewReadFromNow(bystander: Joined): Promise<QueueView | undefined> {
  const since = performance.now();
  return eventually(async () => {
    await place(bystander);
    return queuePlaceMemoryOf(stack.db.sql)!.viewBefore();
  }, (view) => view !== undefined && view.readAt >= since, 10_000);
}

async function statusOf(j: Joined): Promise<string> {
  return (await place(j)).body.status;
}

describe('the memory of waiting places', () => {
  test('answers a waiting place without a read, as a read would: position, ahead and estimate', async () => {
    const course = await queuedCourse({ capacity: 3, waitlistCapacity: 0, opensAt: future(3_600_000) });
    const joined = await joinAll(course, 8, 'mem');
    await readThrice(joined);
    await assertAnsweredFromMemory(joined[0]!);

    await open(course);
    await admitFromQueue(stack.db.sql, course);
    await sleep(PAST_TRUST_MS);
    const views = await readThrice(joined);
    for (const [i, view] of views.entries()) {
      const truth = await stored(joined[i]!);
      assert.deepEqual([view.status, view.position, view.ahead, view.estimatedWaitSeconds], [truth.status, truth.position, truth.ahead, truth.estimated_wait_seconds], `place ${i}`);
    }
    assert.equal(views.filter((v) => v.status === 'admitted').length, 3);
    assert.ok(views.every((v) => v.status !== 'admitted' || typeof v.admission === 'string'), 'an admitted place is read, with its admission');
    // The ranked places behind the pointer come from memory too (the random order decides which).
    const waiting = joined.filter((_, i) => views[i]!.status === 'waiting');
    assert.equal(waiting.length, 5);
    await assertAnsweredFromMemory(waiting[0]!);
    await assertAnsweredFromMemory(waiting[4]!);
  });

  test('a place is never shown further back than its own last read: a view older than a join does not undo admissions', async () => {
    const course = await queuedCourse({ capacity: 2, waitlistCapacity: 0, opensAt: future(3_600_000), order: 'arrival' });
    const joined = await joinAll(course, 6, 'back');
    await open(course);
    await readThrice(joined); // the memory's view is fresh now, and shows nobody admitted
    assert.equal((await admitFromQueue(stack.db.sql, course)).outcome, 'admitting');
    const late = await stack.server.client.request('POST', `/courses/${course}/queue`, { body: { name: 'Late', email: 'late-back@example.org' } });
    assert.deepEqual([late.status, late.body.position], [201, 5], 'the join is answered by the database: two admitted ahead');
    const again = await place({ id: late.body.id, email: 'late-back@example.org', queueToken: late.body.queueToken });
    assert.deepEqual([again.body.status, again.body.position, again.body.ahead], ['waiting', 5, 4], 'read at once, from a view older than the join');
  });

  test('a place that left through another process shows left within a second', async () => {
    const course = await queuedCourse({ capacity: 10, waitlistCapacity: 0, opensAt: future(3_600_000), order: 'arrival' });
    const joined = await joinAll(course, 4, 'left');
    await open(course);
    const views = await readThrice(joined);
    assert.deepEqual(views.map((v) => [v.status, v.position]), [['waiting', 1], ['waiting', 2], ['waiting', 3], ['waiting', 4]]);
    await assertAnsweredFromMemory(joined[1]!);
    await assertAnsweredFromMemory(joined[2]!);

    // Straight in SQL, as another worker or instance leaves: this process's memory is not told.
    await stack.db.sql`SELECT registrar_queue_leave(${joined[1]!.id})`;
    await stack.db.sql`SELECT registrar_queue_leave(${joined[2]!.id})`;
    // No read meanwhile: the view the memory holds is too old to answer from.
    await sleep(PAST_TRUST_MS);
    assert.equal(await statusOf(joined[1]!), 'left', 'past a second');
    // A fresh view, trusted: its count of places gone moved, so the place remembered before is read.
    await viewReadFromNow(joined[0]!);
    assert.equal(await statusOf(joined[2]!), 'left', 'with a view that saw the leave');
    const behind = (await place(joined[3]!)).body;
    assert.deepEqual([behind.status, behind.position], ['waiting', 4], 'a place that left still counts ahead until the pointer passes it');
  });

  test('a sell-out that no view saw shows sold-out within a second', async () => {
    const course = await queuedCourse({ capacity: 1, waitlistCapacity: 0, opensAt: future(3_600_000), order: 'arrival' });
    const joined = await joinAll(course, 4, 'sold');
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const views = await readThrice(joined);
    assert.deepEqual(views.map((v) => v.status), ['admitted', 'waiting', 'waiting', 'waiting']);
    await assertAnsweredFromMemory(joined[1]!);
    await assertAnsweredFromMemory(joined[2]!);

    // Sold out, and room again at the next tick: the course's sold_out is set and cleared
    // between two views, so no view shows it; only the count of places gone does.
    assert.equal((await register(course, joined[0]!, views[0]!.admission)).status, 201);
    assert.equal((await admitFromQueue(stack.db.sql, course)).outcome, 'sold-out');
    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { capacity: 2 })).status, 200);
    const again = await admitFromQueue(stack.db.sql, course);
    assert.deepEqual([again.outcome, 'admitted' in again ? again.admitted : undefined], ['admitting', 0], 'room again, and nobody left waiting to admit');
    // No read meanwhile: the view the memory holds is too old to answer from.
    await sleep(PAST_TRUST_MS);
    assert.equal(await statusOf(joined[1]!), 'sold-out', 'past a second');
    // A fresh view, trusted, that shows room (not sold out): its count of places gone moved.
    const view = await viewReadFromNow(joined[0]!);
    assert.equal(view?.rows.get(course)?.sold_out, false, 'the view shows room again');
    assert.deepEqual([await statusOf(joined[2]!), await statusOf(joined[3]!)], ['sold-out', 'sold-out'], 'with a view that never saw sold_out');
  });

  test('overloaded, a student\'s read of their own waiting place is not shed: waiting from memory, then admitted', async (t) => {
    const overloaded = await startTestServer(stack.db.sql, { shedding: { maxEventLoopDelayMs: 60_000, maxDatabaseBacklog: -1 } });
    t.after(() => overloaded.close());
    const course = await queuedCourse({ capacity: 1, waitlistCapacity: 0, opensAt: future(3_600_000), order: 'arrival' });
    const joined = await joinAll(course, 3, 'shed');
    const [first, second, third] = joined as [Joined, Joined, Joined];
    await open(course);
    await readThrice(joined);
    const read = (j: Joined, token = j.queueToken) => overloaded.client.request('GET', `/queue/${j.id}`, { token });

    const waiting = await read(second);
    assert.deepEqual([waiting.status, waiting.body.status, waiting.body.position], [200, 'waiting', 2], JSON.stringify(waiting.body));
    assertProblem(await read(second, third.queueToken), 503, 'overloaded', 'another place\'s token: shed, not read');
    queuePlaceMemoryOf(stack.db.sql)!.forget(third.id);
    assertProblem(await read(third), 503, 'overloaded', 'a place this worker does not know: shed');
    assertProblem(await overloaded.client.request('GET', `/courses/${course}`), 503, 'overloaded', 'any other read: shed');

    // Admitted: once the memory's view is past its trust (or shows the pointer past the place),
    // the read goes to the database and gives the admission.
    assert.equal((await admitFromQueue(stack.db.sql, course)).outcome, 'admitting');
    await sleep(PAST_TRUST_MS);
    const admitted = await read(first);
    assert.deepEqual([admitted.status, admitted.body.status, typeof admitted.body.admission], [200, 'admitted', 'string'], JSON.stringify(admitted.body));
  });
});
