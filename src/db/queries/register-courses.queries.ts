// SQL for a registration for several courses at once, all or nothing: one statement
// (registrar_register_courses, src/db/functions/register-courses.sql), one transaction.
import type { Sql } from '../database.ts';
import { retryTransaction } from '../retry-policy.ts';
import type { RegisterOutcome } from './registrations.queries.ts';

export type RegisterCoursesParams = {
  courseIds: readonly string[];
  name: string;
  email: string;
  emailKey: string;
  /** One per course, plaintext: each hash is stored, and each rides in its first email's job. */
  manageTokens: readonly string[];
  /** Per course its key hash and sealed token; one request hash for the whole request. */
  idempotency: { keyHashes: readonly Buffer[]; requestHash: Buffer; sealedTokens: readonly Buffer[] } | null;
  /** Seats only: a course that would waitlist refuses the request. */
  seatsOnly: boolean;
};

/** A course's outcome: as in a batch, or no-seat (it would have waitlisted under seatsOnly). */
export type CourseOutcome = RegisterOutcome | { outcome: 'no-seat' };

/** committed: every course created, all in one transaction; else nothing of it stays. */
export type RegisterCoursesOutcome = { committed: boolean; results: CourseOutcome[] };

/**
 * The statement under the retry policy (src/db/retry-policy.ts): a deadlock with a lock-last
 * batch inserting the same student (40P01) runs it again; it is locked first already.
 */
export async function registerCourses(sql: Sql, params: RegisterCoursesParams): Promise<RegisterCoursesOutcome> {
  const hex = (values: readonly Buffer[] | undefined) =>
    sql`(SELECT array_agg(decode(h, 'hex') ORDER BY n) FROM unnest(${params.courseIds.map((_, i) => values?.[i]?.toString('hex') ?? null)}::text[]) WITH ORDINALITY AS k (h, n))`;
  const key = params.idempotency;
  const [row] = await retryTransaction(() => sql<{ result: RegisterCoursesOutcome }[]>`
    SELECT registrar_register_courses(${[...params.courseIds]}::text[], ${params.name}, ${params.email}, ${params.emailKey},
      ${[...params.manageTokens]}::text[], ${hex(key?.keyHashes)}, decode(${key === null ? null : key.requestHash.toString('hex')}::text, 'hex'),
      ${hex(key?.sealedTokens)}, ${params.seatsOnly}) AS result`);
  if (!row) throw new Error('registrar_register_courses returned no row');
  return row.result;
}
