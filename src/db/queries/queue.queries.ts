// SQL for the waiting room: joining, reading, verifying and leaving a place, and one admission
// tick of a course. Each is one call to a registrar_* function (src/db/functions/queue-*.sql).
import type { Sql } from '../database.ts';
import { retryTransaction } from '../retry-policy.ts';

export type QueuePlaceStatus = 'unverified' | 'waiting' | 'admitted' | 'registered' | 'expired' | 'sold-out' | 'left';

/** Built by registrar_queue_place_row() in SQL: snake_case keys, JSON types. */
export type QueuePlaceRow = {
  id: string;
  course_id: string;
  name: string;
  email: string;
  status: QueuePlaceStatus;
  rank: number | null;
  position: number | null;
  ahead: number | null;
  estimated_wait_seconds: number | null;
  joined_at: string;
  admitted_until: string | null;
};

export type JoinParams = {
  courseId: string;
  name: string;
  email: string;
  emailKey: string;
  tokenHash: Buffer;
  admissionHash: Buffer;
};

export type JoinOutcome =
  | { outcome: 'created'; place: QueuePlaceRow }
  | { outcome: 'existing' | 'course-not-found' | 'no-queue' | 'queue-not-open' | 'registration-closed' | 'course-full' };

export async function joinQueue(sql: Sql, params: JoinParams): Promise<JoinOutcome> {
  // A join that waited through the ordering raises 40001 and runs again (queue-join.sql).
  const [row] = await retryTransaction(() => sql<{ result: JoinOutcome }[]>`
    SELECT registrar_queue_join(${params.courseId}, ${params.name}, ${params.email}, ${params.emailKey},
      ${params.tokenHash}, ${params.admissionHash}) AS result`);
  if (!row) throw new Error('registrar_queue_join returned no row');
  return row.result;
}

/**
 * What a token is to a place: one of its tokens made for an email (it verifies), its join
 * answer's, or none of its tokens (no token given, or another place's, or a forged one).
 */
export type QueueTokenMatch = 'emailed' | 'joined' | 'none';

/**
 * The place with its live position (ordering the course's places first when that is due), and
 * what `tokenHash` (a queue token's SHA-256, or null) is to it: one round trip, the token one
 * probe of its hash.
 */
export async function findQueuePlace(sql: Sql, id: string, tokenHash: Buffer | null): Promise<{ place: QueuePlaceRow; token: QueueTokenMatch } | undefined> {
  const [row] = await sql<{ place: QueuePlaceRow | null; emailed: boolean | null }[]>`
    SELECT registrar_queue_place(${id}) AS place,
      (SELECT t.emailed FROM queue_tokens t WHERE t.token_hash = ${tokenHash} AND t.place_id = ${id}) AS emailed`;
  if (!row?.place) return undefined;
  return { place: row.place, token: row.emailed === null ? 'none' : row.emailed ? 'emailed' : 'joined' };
}

export type VerifyOutcome =
  | { outcome: 'verified' | 'unchanged'; place: QueuePlaceRow }
  | { outcome: 'not-found' };

/** Verifies the place's email (registrar_queue_verify); the caller has checked the token. */
export async function verifyQueuePlace(sql: Sql, id: string): Promise<VerifyOutcome> {
  // A verification that waited through the ordering raises 40001 and runs again (queue-places.sql).
  const [row] = await retryTransaction(() => sql<{ result: VerifyOutcome }[]>`SELECT registrar_queue_verify(${id}) AS result`);
  if (!row) throw new Error('registrar_queue_verify returned no row');
  return row.result;
}

export async function leaveQueuePlace(sql: Sql, id: string): Promise<QueuePlaceRow | undefined> {
  const [row] = await sql<{ place: QueuePlaceRow | null }[]>`SELECT registrar_queue_leave(${id}) AS place`;
  return row?.place ?? undefined;
}

/** What one admission tick of a course did (registrar_admit). */
export type AdmitOutcome =
  | { outcome: 'no-queue' | 'closed' }
  | { outcome: 'admitting' | 'sold-out'; admitted: number; expired: number; soldOut: number; outstanding: number; bound: number | null; registered: number };

export async function admitFromQueue(sql: Sql, courseId: string): Promise<AdmitOutcome> {
  const [row] = await sql<{ result: AdmitOutcome }[]>`SELECT registrar_admit(${courseId}) AS result`;
  if (!row) throw new Error('registrar_admit returned no row');
  return row.result;
}

/** The courses with a queue that are open now: those an admission tick has work for. */
export async function listOpenQueuedCourses(sql: Sql): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`SELECT registrar_queued_courses_open() AS id`;
  return rows.map((row) => row.id);
}
