// SQL for the history of registrations: their events that change something (every kind but
// 'reminder'), each with who made the change and why (src/db/functions/record-events.sql).
import type { Sql } from '../database.ts';

export type HistoryKind = 'enrolled' | 'waitlisted' | 'promoted' | 'cancelled' | 'offered' | 'accepted' | 'declined' | 'expired';
export type HistoryActor = 'student' | 'admin' | 'import' | 'system';

/** One entry as stored: a registration event with its actor and reason. */
export type HistoryRow = {
  id: string;
  registration_id: string;
  course_id: string;
  kind: HistoryKind;
  actor: HistoryActor;
  reason: string;
  waitlist_position: number | null;
  created_at: Date;
};

const COLUMNS = 'id::text, registration_id, course_id, kind, actor, reason, waitlist_position, created_at';

/** A course's entries newest first, those older than `beforeId` (a cursor) when given. */
export async function listCourseHistory(sql: Sql, filter: { courseId: string; beforeId: string | null; limit: number }): Promise<HistoryRow[]> {
  return sql<HistoryRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM registration_events
    WHERE course_id = ${filter.courseId} AND kind <> 'reminder'
      AND (${filter.beforeId}::bigint IS NULL OR id < ${filter.beforeId}::bigint)
    ORDER BY registration_events.id DESC
    LIMIT ${filter.limit}`;
}

/** Every entry of one registration, newest first (a registration has a handful). */
export async function listRegistrationHistory(sql: Sql, registrationId: string): Promise<HistoryRow[]> {
  return sql<HistoryRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM registration_events
    WHERE registration_id = ${registrationId} AND kind <> 'reminder'
    ORDER BY registration_events.id DESC`;
}
