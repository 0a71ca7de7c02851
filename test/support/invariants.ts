// Reads the database directly and checks the invariants of SPEC.md for every course:
// counters equal stored rows and stay within capacity, one active registration per email,
// waitlist positions 1..n in arrival order.
import assert from 'node:assert/strict';
import type { Sql } from '../../src/db/database.ts';

export async function assertInvariants(sql: Sql): Promise<void> {
  const courses = await sql<{ id: string; capacity: number; waitlist_capacity: number; enrolled: number; waitlisted: number; rows_enrolled: number; rows_waitlisted: number }[]>`
    SELECT c.id, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
      count(r.*) FILTER (WHERE r.status = 'enrolled')::int AS rows_enrolled,
      count(r.*) FILTER (WHERE r.status = 'waitlisted')::int AS rows_waitlisted
    FROM courses c LEFT JOIN registrations r ON r.course_id = c.id
    GROUP BY c.id`;
  for (const c of courses) {
    assert.ok(c.enrolled <= c.capacity, `${c.id}: enrolled ${c.enrolled} > capacity ${c.capacity}`);
    assert.ok(c.waitlisted <= c.waitlist_capacity, `${c.id}: waitlisted ${c.waitlisted} > ${c.waitlist_capacity}`);
    assert.equal(c.enrolled, c.rows_enrolled, `${c.id}: enrolled counter ${c.enrolled} != ${c.rows_enrolled} rows`);
    assert.equal(c.waitlisted, c.rows_waitlisted, `${c.id}: waitlisted counter ${c.waitlisted} != ${c.rows_waitlisted} rows`);
    // A free seat with people still waiting means a promotion was missed.
    assert.ok(!(c.enrolled < c.capacity && c.waitlisted > 0), `${c.id}: ${c.capacity - c.enrolled} free seats while ${c.waitlisted} wait`);
  }
  const duplicates = await sql`
    SELECT course_id, email_key, count(*) FROM registrations WHERE status <> 'cancelled'
    GROUP BY course_id, email_key HAVING count(*) > 1`;
  assert.deepEqual([...duplicates], [], 'two active registrations for one email');
}

/** The waitlist of a course as the API reports it, in order: positions must be 1..n. */
export async function waitlistPositions(sql: Sql, courseId: string): Promise<number[]> {
  const rows = await sql<{ position: string }[]>`
    SELECT (registrar_registration_row(r) ->> 'waitlist_position') AS position
    FROM registrations r WHERE course_id = ${courseId} AND status = 'waitlisted' ORDER BY seq`;
  return rows.map((row) => Number(row.position));
}
