// The waiting room's figures (readQueueFigures) against a count of every place by status, at
// each step of a queue's life: joins before opensAt, leaves before and after the ordering,
// admissions, registrations, expiry (before and after a tick records it), sold-out, seats freed
// after the sell-out, joins after it, and unverified places of a verifyEmail course.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { type QueueFigures, readQueueFigures } from '../../src/domain/queue-figures.service.ts';
import { newCourse, type CourseOptions } from '../support/factories.ts';
import type { Answer } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack();

const past = (ms: number) => new Date(Date.now() - ms).toISOString();
const future = (ms: number) => new Date(Date.now() + ms).toISOString();

type Joined = { id: string; email: string; queueToken: string };

function queuedCourse(options: CourseOptions & { admissionSeconds?: number; verifyEmail?: boolean }): Promise<string> {
  const { admissionSeconds, verifyEmail, ...course } = options;
  return newCourse(stack.server.client, { ...course, queue: { order: 'arrival', ...(admissionSeconds ? { admissionSeconds } : {}), ...(verifyEmail ? { verifyEmail } : {}) } });
}

async function join(course: string, prefix: string, count: number): Promise<Joined[]> {
  const joined: Joined[] = [];
  // One at a time: arrival order is join order, so which place is admitted is known.
  for (let i = 0; i < count; i++) {
    const email = `${prefix}${i}@example.org`;
    const answer = await stack.server.client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${prefix}${i}`, email } });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    joined.push({ id: answer.body.id, email, queueToken: answer.body.queueToken });
  }
  return joined;
}

async function leave(place: Joined): Promise<void> {
  assert.equal((await stack.server.client.request('DELETE', `/queue/${place.id}`, { token: place.queueToken })).status, 200);
}

async function register(course: string, place: Joined): Promise<Answer> {
  const { admission } = (await stack.server.client.request('GET', `/queue/${place.id}`, { token: place.queueToken })).body;
  assert.equal(typeof admission, 'string', `${place.email} is admitted`);
  const answer = await stack.server.client.request('POST', '/register', { body: { name: 'A Student', email: place.email, course, admission } });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer;
}

async function figuresOf(course: string): Promise<QueueFigures> {
  const figures = (await readQueueFigures(stack.db.sql)).find((f) => f.course === course);
  assert.ok(figures, `${course} has figures`);
  return figures;
}

/** Every place counted by status, as a place reads (an admission past its time is expired). */
async function countedPlaces(course: string): Promise<QueueFigures['places']> {
  const rows = await stack.db.sql<{ status: keyof QueueFigures['places']; n: number }[]>`
    SELECT CASE WHEN status = 'admitted' AND admitted_until <= now() THEN 'expired' ELSE status::text END AS status, count(*)::int AS n
    FROM queue_places WHERE course_id = ${course} GROUP BY 1`;
  const counted: QueueFigures['places'] = { unverified: 0, waiting: 0, admitted: 0, registered: 0, expired: 0, 'sold-out': 0, left: 0, closed: 0 };
  for (const row of rows) counted[row.status] = row.n;
  return counted;
}

/** The figures equal the count of every place, and hold `expected` (the statuses named in it). */
async function assertFigures(course: string, expected: Partial<QueueFigures['places']>, step: string): Promise<QueueFigures> {
  const figures = await figuresOf(course);
  assert.deepEqual(figures.places, await countedPlaces(course), `${step}: the figures are the places counted`);
  for (const [status, n] of Object.entries(expected)) assert.equal(figures.places[status as keyof QueueFigures['places']], n, `${step}: ${status}`);
  return figures;
}

describe('the waiting room\'s figures', () => {
  test('are the places counted by status through joins, leaves, admissions, registrations, expiry, sold-out and seats freed after it', async () => {
    const course = await queuedCourse({ capacity: 4, waitlistCapacity: 0, opensAt: future(3_600_000), admissionSeconds: 1 });
    const joined = await join(course, 'fig', 12);
    let figures = await assertFigures(course, { waiting: 12 }, 'joined before opensAt');
    assert.deepEqual({ ordered: figures.ordered, soldOutSince: figures.soldOutSince, admittedTotal: figures.admittedTotal }, { ordered: false, soldOutSince: null, admittedTotal: 0 });
    await leave(joined[11]!);
    await assertFigures(course, { waiting: 11, left: 1 }, 'left before the ordering');

    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: past(1_000) })).status, 200);
    await admitFromQueue(stack.db.sql, course);
    figures = await assertFigures(course, { waiting: 7, admitted: 4, left: 1 }, 'ordered, the first tick');
    assert.equal(figures.ordered, true);
    assert.equal(figures.admittedTotal, 4);
    assert.ok(figures.admissionsPerSecond > 0, `admissions per second ${figures.admissionsPerSecond}`);

    await register(course, joined[0]!);
    await register(course, joined[1]!);
    await leave(joined[2]!); // admitted, then left
    await leave(joined[10]!); // ranked and waiting, then left
    await assertFigures(course, { waiting: 6, admitted: 1, registered: 2, left: 3 }, 'registered, left admitted and left waiting');

    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await assertFigures(course, { admitted: 0, expired: 1 }, 'an admission past its time, before a tick');
    await admitFromQueue(stack.db.sql, course);
    figures = await assertFigures(course, { waiting: 4, admitted: 2, registered: 2, expired: 1, left: 3 }, 'the tick expired it and admitted two');
    assert.equal(figures.admittedTotal, 6);

    const seats = [await register(course, joined[4]!), await register(course, joined[5]!)];
    await admitFromQueue(stack.db.sql, course);
    figures = await assertFigures(course, { waiting: 0, 'sold-out': 4, registered: 4 }, 'sold out');
    assert.ok(figures.soldOutSince instanceof Date);

    // A seat freed: the course has room again (no longer sold out), its sold-out places stay so.
    assert.equal((await stack.server.client.request('DELETE', `/registrations/${seats[0]!.body.id}`, { token: seats[0]!.body.manageToken })).status, 200);
    await admitFromQueue(stack.db.sql, course);
    figures = await assertFigures(course, { waiting: 0, 'sold-out': 4 }, 'a seat freed after the sell-out');
    assert.equal(figures.soldOutSince, null);
    const late = await join(course, 'late', 2);
    await assertFigures(course, { waiting: 2, 'sold-out': 4 }, 'joined after the sell-out ended');
    await admitFromQueue(stack.db.sql, course);
    await assertFigures(course, { waiting: 1, admitted: 1 }, 'one seat: one admitted');
    await register(course, late[0]!);
    await admitFromQueue(stack.db.sql, course);
    await assertFigures(course, { waiting: 0, 'sold-out': 5 }, 'sold out again');
  });

  test('count unverified places apart, and list every queued course and only those', async () => {
    const plain = await newCourse(stack.server.client, { capacity: 3 });
    const course = await queuedCourse({ capacity: 3, verifyEmail: true });
    await join(course, 'unv', 3);
    await assertFigures(course, { unverified: 3, waiting: 0 }, 'joined, not verified');
    const courses = (await readQueueFigures(stack.db.sql)).map((f) => f.course);
    assert.ok(!courses.includes(plain), 'a course without a queue has no figures');
    assert.deepEqual(courses, [...courses].sort(), 'by course id');
  });
});
