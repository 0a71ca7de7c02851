// SQL for registrations for several courses per request, all or nothing: a batch of such
// requests in one statement (registrar_register_courses, src/db/functions/register-courses.sql).
import type { Sql } from '../database.ts';
import { createGroupCommit } from '../group-commit.ts';
import { perPool } from '../per-pool.ts';
import { inRegistrationTurn } from '../registration-turns.ts';
import { runBatch, settledValue } from '../retry-policy.ts';
import { type RegisterOutcome, REGISTRATION_BATCHES_IN_FLIGHT } from './registrations.queries.ts';

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

/** Requests for several courses per transaction, at most (each with up to 10 courses). */
export const MULTI_COURSE_MAX_BATCH = 64;

/** One attempt: a batch of requests in one statement, one transaction; one outcome per request. */
async function attemptRegisterCourses(sql: Sql, batch: readonly RegisterCoursesParams[]): Promise<RegisterCoursesOutcome[]> {
  const members = batch.flatMap((p) => p.courseIds.map((courseId, i) => ({ p, courseId, i })));
  const text = (pick: (m: (typeof members)[number]) => string) => members.map(pick);
  // As hex text: postgres.js types an array by its first element, and sends Buffers as one bytea.
  const bytes = (pick: (m: (typeof members)[number]) => Buffer | undefined) =>
    sql`(SELECT array_agg(decode(h, 'hex') ORDER BY n) FROM unnest(${members.map((m) => pick(m)?.toString('hex') ?? null)}::text[]) WITH ORDINALITY AS k (h, n))`;
  const [row] = await sql<{ results: RegisterCoursesOutcome[] }[]>`
    SELECT registrar_register_courses(${batch.map((p) => p.courseIds.length)}::integer[], ${text((m) => m.courseId)}::text[],
      ${text((m) => m.p.name)}::text[], ${text((m) => m.p.email)}::text[], ${text((m) => m.p.emailKey)}::text[],
      ${text((m) => m.p.manageTokens[m.i]!)}::text[], ${bytes((m) => m.p.idempotency?.keyHashes[m.i])},
      ${bytes((m) => m.p.idempotency?.requestHash)}, ${bytes((m) => m.p.idempotency?.sealedTokens[m.i])},
      ${batch.map((p) => (p.seatsOnly ? 'true' : 'false'))}::text[]::boolean[]) AS results`;
  if (!row) throw new Error('registrar_register_courses returned no row');
  return row.results;
}

/**
 * A batch under the retry policy (src/db/retry-policy.ts): a deadlock with a lock-last batch
 * inserting the same student (40P01) runs it again (it is locked first already); another error
 * splits it into its requests.
 */
function registerCoursesBatch(sql: Sql, batch: readonly RegisterCoursesParams[]): Promise<PromiseSettledResult<RegisterCoursesOutcome>[]> {
  return runBatch(batch, (requests) => attemptRegisterCourses(sql, requests), { lockFirst: true });
}

const groupCommitOf = perPool((sql: Sql) => createGroupCommit({
  run: (batch: RegisterCoursesParams[]) => inRegistrationTurn(sql, batch.flatMap((p) => p.courseIds), () => registerCoursesBatch(sql, batch)),
  maxBatch: MULTI_COURSE_MAX_BATCH,
  maxInFlight: REGISTRATION_BATCHES_IN_FLIGHT,
  keysOf: (p) => p.courseIds,
}));

/**
 * Registers through the pool's group commit of requests for several courses (apart from the
 * single-course one, whose batches stay as they are): with the others arriving meanwhile, in one
 * transaction. A request with an Idempotency-Key goes alone, at once, as a single one does.
 */
export async function registerCourses(sql: Sql, params: RegisterCoursesParams): Promise<RegisterCoursesOutcome> {
  if (params.idempotency !== null) return settledValue((await registerCoursesBatch(sql, [params]))[0]!);
  return groupCommitOf(sql)(params);
}
