// A queued course over real HTTP for the waiting-room tests: make one, join it, read a place, open
// it now, and read its places' ranks and statuses from the database.
import assert from 'node:assert/strict';
import { type CourseOptions, newCourse } from './factories.ts';
import type { Answer } from './http.ts';
import { countBy } from './rush.ts';
import type { Stack } from './stack.ts';

export const past = (ms: number) => new Date(Date.now() - ms).toISOString();
export const future = (ms: number) => new Date(Date.now() + ms).toISOString();

export type Joined = { id: string; email: string; queueToken: string };

export function queuedCourseHelpers(stack: Stack) {
  function queuedCourse(options: CourseOptions & { order?: 'random' | 'arrival'; admissionSeconds?: number }): Promise<string> {
    const { order, admissionSeconds, ...course } = options;
    return newCourse(stack.server.client, { ...course, queue: { order: order ?? 'random', ...(admissionSeconds ? { admissionSeconds } : {}) } });
  }

  function join(course: string, n: number, prefix = 'q'): Promise<Answer> {
    return stack.server.client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${prefix}${n}`, email: `${prefix}${n}@example.org` } });
  }

  async function joinAll(course: string, count: number, prefix = 'q'): Promise<Joined[]> {
    const answers = await Promise.all(Array.from({ length: count }, (_, i) => join(course, i, prefix)));
    assert.deepEqual(countBy(answers, (a) => a.status), { 201: count });
    return answers.map((a, i) => ({ id: a.body.id, email: `${prefix}${i}@example.org`, queueToken: a.body.queueToken }));
  }

  function place(joined: Joined): Promise<Answer> {
    return stack.server.client.request('GET', `/queue/${joined.id}`, { token: joined.queueToken });
  }

  /** Opens the course now (its places joined while opensAt was ahead). */
  async function open(course: string): Promise<void> {
    const answer = await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: past(1_000) });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  }

  async function ranks(course: string): Promise<Map<string, number | null>> {
    const rows = await stack.db.sql<{ id: string; rank: string | null }[]>`SELECT id, rank::text FROM queue_places WHERE course_id = ${course}`;
    return new Map(rows.map((row) => [row.id, row.rank === null ? null : Number(row.rank)]));
  }

  async function statuses(course: string): Promise<Record<string, number>> {
    const rows = await stack.db.sql<{ status: string }[]>`SELECT status::text FROM queue_places WHERE course_id = ${course}`;
    return countBy(rows, (row) => row.status);
  }

  function register(course: string, joined: { email: string }, admission?: string): Promise<Answer> {
    return stack.server.client.request('POST', '/register', { body: { name: 'A Student', email: joined.email, course, ...(admission === undefined ? {} : { admission }) } });
  }

  return { queuedCourse, join, joinAll, place, open, ranks, statuses, register };
}
