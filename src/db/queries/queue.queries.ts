// SQL for the waiting room: joining, reading, verifying and leaving a place, and one admission
// tick of a course. Each is one call to a registrar_* function (src/db/functions/queue-*.sql).
import type { Sql } from '../database.ts';
import { createGroupCommit } from '../group-commit.ts';
import { perPool } from '../per-pool.ts';
import { retryTransaction, runBatch } from '../retry-policy.ts';
import { GROUP_COMMIT_MAX_IN_FLIGHT } from './registrations.queries.ts';

export type QueuePlaceStatus = 'unverified' | 'waiting' | 'admitted' | 'registered' | 'expired' | 'sold-out' | 'left' | 'closed';

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

/** Joins per transaction, at most. */
const JOIN_MAX_BATCH = 256;

async function joinBatch(sql: Sql, batch: readonly JoinParams[]): Promise<JoinOutcome[]> {
  const [row] = await sql<{ results: JoinOutcome[] }[]>`
    SELECT registrar_queue_join_batch(${batch.map((p) => p.courseId)}::text[], ${batch.map((p) => p.name)}::text[],
      ${batch.map((p) => p.email)}::text[], ${batch.map((p) => p.emailKey)}::text[],
      ${batch.map((p) => p.tokenHash.toString('hex'))}::text[], ${batch.map((p) => p.admissionHash.toString('hex'))}::text[]) AS results`;
  if (!row) throw new Error('registrar_queue_join_batch returned no row');
  return row.results;
}

// A join that waited through the ordering raises 40001 and its batch runs again (queue-join.sql,
// src/db/retry-policy.ts); a batch failing otherwise is split into its members.
const joinGroupOf = perPool((sql: Sql) =>
  createGroupCommit({ run: (batch: JoinParams[]) => runBatch(batch, (members) => joinBatch(sql, members)), maxBatch: JOIN_MAX_BATCH, maxInFlight: GROUP_COMMIT_MAX_IN_FLIGHT }));

/** Joins through the pool's group commit (src/db/group-commit.ts): with the other joins of this
 * process that arrive meanwhile, in one transaction. */
export function joinQueue(sql: Sql, params: JoinParams): Promise<JoinOutcome> {
  return joinGroupOf(sql)(params);
}

/**
 * What a token is to a place: one of its tokens made for an email (it verifies), its join
 * answer's, or none of its tokens (no token given, or another place's, or a forged one).
 */
export type QueueTokenMatch = 'emailed' | 'joined' | 'none';

type PlaceLookup = { id: string; tokenHash: Buffer | null };
type FoundPlace = { place: QueuePlaceRow; token: QueueTokenMatch } | undefined;

/** Places read per statement, at most. */
const READ_MAX_BATCH = 1024;

/** The places of many lookups in one statement: per lookup, the place and one probe of its token's hash. */
async function findQueuePlaceBatch(sql: Sql, lookups: readonly PlaceLookup[]): Promise<FoundPlace[]> {
  const rows = await sql<{ n: string; place: QueuePlaceRow; emailed: boolean | null }[]>`
    SELECT r.n::text AS n, r.place, r.emailed
    FROM registrar_queue_places_read(${lookups.map((l) => l.id)}::uuid[], ${lookups.map((l) => l.tokenHash?.toString('hex') ?? null)}::text[]) r`;
  const found: FoundPlace[] = lookups.map(() => undefined);
  for (const row of rows) found[Number(row.n) - 1] = { place: row.place, token: row.emailed === null ? 'none' : row.emailed ? 'emailed' : 'joined' };
  return found;
}

// Reads of places arriving while a read is in flight go together in the next one: a rush of
// students polling their place costs one statement per batch, not one per request.
const placeReadsOf = perPool((sql: Sql) =>
  createGroupCommit({ run: (lookups: PlaceLookup[]) => runBatch(lookups, (members) => findQueuePlaceBatch(sql, members)), maxBatch: READ_MAX_BATCH, maxInFlight: GROUP_COMMIT_MAX_IN_FLIGHT }));

/**
 * The place with its live position (ordering the course's places first when that is due), and
 * what `tokenHash` (a queue token's SHA-256, or null) is to it, read with the other reads of
 * this process arriving meanwhile; the token is one probe of its hash.
 */
export function findQueuePlace(sql: Sql, id: string, tokenHash: Buffer | null): Promise<FoundPlace> {
  return placeReadsOf(sql)({ id, tokenHash });
}

export type AdmissionProbe = { courseId: string; admissionHash: Buffer };

/**
 * The statement behind isAdmissionLive: the ordinal (1-based, as text) of each probe whose hash
 * is the admission of a live place of its course (the conditions of registrar_lock_admission but
 * the email key, without a lock). Each probe is its own lookup (LATERAL ... LIMIT 1 is not
 * flattened into a join): the token by its unique admission hash, then its place. As a plain
 * join, the planner could start from the course's admitted places instead (during a rush all
 * probes name the same course) and check every probe against every one of them: 1,024 probes
 * times 2,700 admitted places, 12 s a statement in the full-size `queue` bench
 * (docs/benchmarks.md, "The admission probe"). Exported for the test of its plan.
 */
export function liveAdmissionsStatement(sql: Sql, probes: readonly AdmissionProbe[]) {
  return sql<{ n: string }[]>`
    SELECT m.n::text AS n
    FROM unnest(${probes.map((p) => p.courseId)}::text[], ${probes.map((p) => p.admissionHash.toString('hex'))}::text[]) WITH ORDINALITY AS m (course, hash, n)
    CROSS JOIN LATERAL (
      SELECT 1 FROM queue_tokens t JOIN queue_places q ON q.id = t.place_id
      WHERE t.admission_hash = decode(m.hash, 'hex') AND q.course_id = m.course AND registrar_admission_is_live(q.status, q.admitted_until)
      LIMIT 1) live`;
}

/** Per probe, whether its admission is live, in one statement. */
async function findLiveAdmissions(sql: Sql, probes: readonly AdmissionProbe[]): Promise<boolean[]> {
  const rows = await liveAdmissionsStatement(sql, probes);
  const live = probes.map(() => false);
  for (const row of rows) live[Number(row.n) - 1] = true;
  return live;
}

// Probes arriving while one is in flight go together in the next: bots sending made-up
// admissions by the thousand cost one statement per batch.
const admissionProbesOf = perPool((sql: Sql) =>
  createGroupCommit({ run: (probes: AdmissionProbe[]) => runBatch(probes, (members) => findLiveAdmissions(sql, members)), maxBatch: READ_MAX_BATCH, maxInFlight: GROUP_COMMIT_MAX_IN_FLIGHT }));

/** Whether `admissionHash` (an admission token's SHA-256) belongs to a place of the course admitted now. */
export function isAdmissionLive(sql: Sql, courseId: string, admissionHash: Buffer): Promise<boolean> {
  return admissionProbesOf(sql)({ courseId, admissionHash });
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
  | { outcome: 'no-queue' | 'closed'; closedPlaces?: number }
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

/** What a waiting place's answer depends on, per queued course (registrar_queue_views). */
export type QueueViewRow = {
  course_id: string;
  passed: number;
  admission_rate: number;
  ordered: boolean;
  sold_out: boolean;
  closed: boolean;
  gone_total: number;
  opens_in_ms: number | null;
  closes_in_ms: number | null;
};

export async function readQueueViews(sql: Sql): Promise<QueueViewRow[]> {
  return sql<QueueViewRow[]>`
    SELECT course_id, passed::float8 AS passed, admission_rate, ordered, sold_out, closed, gone_total::float8 AS gone_total, opens_in_ms, closes_in_ms
    FROM registrar_queue_views()`;
}
