// SQL for the history: registrations' events that change something (every kind but 'reminder'),
// each with who made the change and why (src/db/functions/record-events.sql), and a course's own
// changes (course_events: its capacity), one order by the id both take from one sequence.
import type { Sql, TransactionSql } from '../database.ts';

export type HistoryKind = 'enrolled' | 'waitlisted' | 'promoted' | 'cancelled' | 'offered' | 'accepted' | 'declined' | 'expired' | 'capacity-changed';
export type HistoryActor = 'student' | 'admin' | 'import' | 'system';

/** One entry as stored: a registration event with its actor and reason, or a course event (no registration). */
export type HistoryRow = {
  id: string;
  registration_id: string | null;
  course_id: string;
  kind: HistoryKind;
  actor: HistoryActor;
  reason: string;
  waitlist_position: number | null;
  created_at: Date;
};

const COLUMNS = 'id::text, registration_id, course_id, kind, actor, reason, waitlist_position, created_at';

/** A course's entries (its registrations' and its own) newest first, those older than `beforeId`
 * (a cursor) when given: each table read by its (course_id, id) index, at most `limit` of each. */
export async function listCourseHistory(sql: Sql, filter: { courseId: string; beforeId: string | null; limit: number }): Promise<HistoryRow[]> {
  return sql<HistoryRow[]>`
    SELECT * FROM (
      (SELECT ${sql.unsafe(COLUMNS)} FROM registration_events
       WHERE course_id = ${filter.courseId} AND kind <> 'reminder'
         AND (${filter.beforeId}::bigint IS NULL OR id < ${filter.beforeId}::bigint)
       ORDER BY registration_events.id DESC LIMIT ${filter.limit})
      UNION ALL
      (SELECT id::text, NULL::uuid, course_id, kind, actor, reason, NULL::integer, created_at FROM course_events
       WHERE course_id = ${filter.courseId}
         AND (${filter.beforeId}::bigint IS NULL OR id < ${filter.beforeId}::bigint)
       ORDER BY course_events.id DESC LIMIT ${filter.limit})
    ) entries
    ORDER BY id::bigint DESC
    LIMIT ${filter.limit}`;
}

/** Records a change of the course itself (its capacity) by `actor`, in the caller's transaction. */
export async function recordCourseEvent(tx: TransactionSql, event: { courseId: string; kind: 'capacity-changed'; actor: HistoryActor; reason: string }): Promise<void> {
  await tx`INSERT INTO course_events (course_id, kind, actor, reason) VALUES (${event.courseId}, ${event.kind}, ${event.actor}, ${event.reason})`;
}

/** Every entry of one registration, newest first (a registration has a handful). */
export async function listRegistrationHistory(sql: Sql, registrationId: string): Promise<HistoryRow[]> {
  return sql<HistoryRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM registration_events
    WHERE registration_id = ${registrationId} AND kind <> 'reminder'
    ORDER BY registration_events.id DESC`;
}
