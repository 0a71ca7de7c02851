// An HTTP worker's memory of waiting places (src/domain/queue-place-memory.ts), over real HTTP
// and a real PostgreSQL: a waiting place is answered without a read, with the same position,
// ahead and estimate a read gives; and once the view it trusts is more than a second old, every
// change made elsewhere shows: an admission, a leave through another process, a sell-out that
// was over before any view saw it.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { enableQueuePlaceMemory } from '../../src/domain/queue-place-memory.ts';
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

/** Reads every place twice, the view's refresh between, so that the second read can come from memory. */
async function readTwice(joined: Joined[]): Promise<any[]> {
  await Promise.all(joined.map((j) => place(j)));
  await sleep(600);
  await Promise.all(joined.map((j) => place(j)));
  return Promise.all(joined.map(async (j) => (await place(j)).body));
}

describe('the memory of waiting places', () => {
  test('answers a waiting place without a read, as a read would: position, ahead and estimate', async () => {
    const course = await queuedCourse({ capacity: 3, waitlistCapacity: 0, opensAt: future(3_600_000) });
    const joined = await joinAll(course, 8, 'mem');
    await readTwice(joined);
    // Behind the memory's back (no process writes a name): a read from memory still shows the old one.
    await stack.db.sql`UPDATE queue_places SET name = 'Changed' WHERE id = ${joined[0]!.id}`;
    assert.equal((await place(joined[0]!)).body.name, 'Student mem0', 'answered from memory');
    await stack.db.sql`UPDATE queue_places SET name = 'Student mem0' WHERE id = ${joined[0]!.id}`;

    await open(course);
    await admitFromQueue(stack.db.sql, course);
    await sleep(PAST_TRUST_MS);
    const views = await readTwice(joined);
    for (const [i, view] of views.entries()) {
      const truth = await stored(joined[i]!);
      assert.deepEqual([view.status, view.position, view.ahead, view.estimatedWaitSeconds], [truth.status, truth.position, truth.ahead, truth.estimated_wait_seconds], `place ${i}`);
    }
    assert.equal(views.filter((v) => v.status === 'admitted').length, 3);
    assert.ok(views.every((v) => v.status !== 'admitted' || typeof v.admission === 'string'), 'an admitted place is read, with its admission');
  });

  test('past a second, a leave elsewhere and a sell-out no view saw both show', async () => {
    const course = await queuedCourse({ capacity: 1, waitlistCapacity: 0, opensAt: future(3_600_000), order: 'arrival' });
    const joined = await joinAll(course, 5, 'gone');
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const views = await readTwice(joined);
    assert.deepEqual(views.map((v) => v.status), ['admitted', 'waiting', 'waiting', 'waiting', 'waiting']);

    // A leave through another process: straight in SQL, this process's memory is not told.
    await stack.db.sql`SELECT registrar_queue_leave(${joined[4]!.id})`;
    // Sold out and room again within one tick of the view: it never shows sold_out.
    assert.equal((await register(course, joined[0]!, views[0]!.admission)).status, 201);
    assert.equal((await admitFromQueue(stack.db.sql, course)).outcome, 'sold-out');
    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { capacity: 2 })).status, 200);
    assert.equal((await admitFromQueue(stack.db.sql, course)).outcome, 'admitting');
    await sleep(PAST_TRUST_MS);
    const after = await Promise.all(joined.map(async (j) => (await place(j)).body.status));
    assert.deepEqual(after, ['registered', 'sold-out', 'sold-out', 'sold-out', 'left']);
  });
});
