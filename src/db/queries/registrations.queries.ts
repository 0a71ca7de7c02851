// SQL for registrations. Every seat change is one call to a registrar_* function
// (src/db/functions/), so the course lock is held for a single round trip.
import type { Sql } from '../database.ts';
import { createGroupCommit } from '../group-commit.ts';
import { perPool } from '../per-pool.ts';
import { inRegistrationTurn } from '../registration-turns.ts';
import { type RetryOptions, retryTransaction, runBatch, settledValue } from '../retry-policy.ts';
import { runWithSwapLocks } from '../swap-locks.ts';

export type RegistrationStatus = 'enrolled' | 'waitlisted' | 'cancelled';

/** Built by registrar_registration_row() in SQL: snake_case columns, JSON types. */
export type RegistrationRow = {
  id: string;
  course_id: string;
  name: string;
  email: string;
  status: RegistrationStatus;
  waitlist_position: number | null;
  created_at: string | Date;
  /** The deadline of the registration's open waitlist offer (offers.sql), or null. */
  offer_until: string | Date | null;
};

/** Registrations per transaction, at most. */
export const GROUP_COMMIT_MAX_BATCH = 256;
/** Batches of one process in flight at once, for a group commit without keys, whose batches may meet on the same rows. */
export const GROUP_COMMIT_MAX_IN_FLIGHT = 1;
/**
 * Registration batches of one process in flight at once, kept on disjoint courses when more than
 * one (keysOf, src/db/group-commit.ts). One, measured: on 100 courses at concurrency 64 four in
 * flight took twice the wall-clock and about 2.5 times PostgreSQL's CPU of one (smaller batches,
 * each paying its transaction and its course locks; docs/benchmarks.md, "Batches in flight").
 * A keyed request and a multi-course batch still go beside it.
 */
export const REGISTRATION_BATCHES_IN_FLIGHT = 1;

export type RegisterParams = {
  courseId: string;
  name: string;
  email: string;
  emailKey: string;
  /** Plaintext: its hash is stored, and it rides in the first email's job until sent. */
  manageToken: string;
  idempotency: { keyHash: Buffer; requestHash: Buffer; sealedToken: Buffer } | null;
  /** The SHA-256 of the admission token, for a course with a queue; absent or null without one. */
  admissionHash?: Buffer | null;
};

export type RegisterOutcome =
  | { outcome: 'created' | 'existing'; registration: RegistrationRow }
  | { outcome: 'replay'; statusCode: 200 | 201; registration: RegistrationRow; sealedToken: string | null }
  | { outcome: 'course-full'; queued: boolean }
  | { outcome: 'limit-reached'; term: string; limit: number }
  | { outcome: 'key-reused' | 'key-in-progress' | 'course-not-found' | 'registration-closed' | 'not-admitted' };

/**
 * One batch, in the common case in one statement (registrar_register_batch: one transaction),
 * lock last unless a member has an Idempotency-Key; a failed attempt is followed as
 * src/db/retry-policy.ts decides (locked first, split into members, ...). One settled result
 * per member, in order.
 */
export function registerBatch(sql: Sql, batch: readonly RegisterParams[], onStep?: RetryOptions['onStep']): Promise<PromiseSettledResult<RegisterOutcome>[]> {
  const lockFirst = batch.some((p) => p.idempotency !== null);
  return runBatch(batch, (members, lockFirstNow) => attemptRegisterBatch(sql, members, lockFirstNow), { lockFirst, ...(onStep ? { onStep } : {}) });
}

/** One attempt: the outcomes in order, as one jsonb (parsed by JSON.parse, much cheaper than a
 * jsonb[] parsed element by element). */
async function attemptRegisterBatch(sql: Sql, batch: readonly RegisterParams[], lockFirst: boolean): Promise<RegisterOutcome[]> {
  // As text in bytea's hex format, cast to bytea[] by the server: postgres.js types an array by
  // its first element, and sends Buffers as one bytea. A cast, not a subquery, so the statement
  // (planned at each call: force_custom_plan, src/db/database.ts) stays one function call.
  const bytesOf = (values: (Buffer | null)[]) => sql`${values.map((value) => (value === null ? null : `\\x${value.toString('hex')}`))}::text[]::bytea[]`;
  const bytes = (pick: (key: NonNullable<RegisterParams['idempotency']>) => Buffer) => bytesOf(batch.map((p) => (p.idempotency ? pick(p.idempotency) : null)));
  const [row] = await sql<{ results: RegisterOutcome[] }[]>`
    SELECT to_jsonb(registrar_register_batch(${lockFirst}::boolean,
      ${batch.map((p) => p.courseId)}::text[], ${batch.map((p) => p.name)}::text[], ${batch.map((p) => p.email)}::text[],
      ${batch.map((p) => p.emailKey)}::text[], ${batch.map((p) => p.manageToken)}::text[],
      ${bytes((k) => k.keyHash)}, ${bytes((k) => k.requestHash)}, ${bytes((k) => k.sealedToken)},
      ${bytesOf(batch.map((p) => p.admissionHash ?? null))}, 'student')) AS results`;
  if (!row) throw new Error('registrar_register_batch returned no row');
  return row.results;
}

// Per connection pool (src/db/per-pool.ts): who observes its batch sizes, its group commit of
// registrations and its group commit of active-registration reads.
const batchObservers = new WeakMap<Sql, (size: number) => void>();

/** Told the size of each registration batch of this pool (the metrics' histogram). */
export function observeRegistrationBatches(sql: Sql, observer: (size: number) => void): void {
  batchObservers.set(sql, observer);
}

type ActiveKey = { courseId: string; emailKey: string; keyHash: Buffer | null };

export type ActiveLookup = {
  /** The student's active registration in the course, or null. */
  registration: RegistrationRow | null;
  /** The request's Idempotency-Key has a stored answer, or a request holding it is in progress. */
  keyKnown: boolean;
};

/**
 * The active registrations of these students and what their Idempotency-Keys stand for, in one
 * read (no row written, no transaction id). A key's request in progress is seen by its advisory
 * lock (registrar_register_batch), taken here for the statement only: its row is not
 * committed yet. A request arriving with the key during that instant finds it taken and answers
 * key-in-progress, as it would for any concurrent request with the same key.
 */
export async function findActiveRegistrations(sql: Sql, keys: readonly ActiveKey[]): Promise<ActiveLookup[]> {
  const rows = await sql<{ n: string; registration: RegistrationRow | null; key_known: boolean }[]>`
    SELECT k.n::text AS n, a.registration,
      CASE WHEN k.key_hex IS NULL THEN false
           WHEN EXISTS (SELECT 1 FROM idempotency_keys i WHERE i.key_hash = decode(k.key_hex, 'hex')) THEN true
           ELSE NOT pg_try_advisory_xact_lock(('x' || substr(k.key_hex, 1, 16))::bit(64)::bigint) END AS key_known
    FROM unnest(${keys.map((k) => k.courseId)}::text[], ${keys.map((k) => k.emailKey)}::text[],
      ${keys.map((k) => (k.keyHash === null ? null : k.keyHash.toString('hex')))}::text[]) WITH ORDINALITY AS k (course_id, email_key, key_hex, n)
    LEFT JOIN LATERAL (
      SELECT registrar_registration_row(r) AS registration FROM registrar_active_registration(k.course_id, k.email_key) r) a ON true`;
  const found: ActiveLookup[] = keys.map(() => ({ registration: null, keyKnown: false }));
  for (const row of rows) found[Number(row.n) - 1] = { registration: row.registration, keyKnown: row.key_known };
  return found;
}

const activeLookupOf = perPool((sql: Sql) =>
  createGroupCommit({ run: (keys: ActiveKey[]) => runBatch(keys, (members) => findActiveRegistrations(sql, members)), maxBatch: 1024, maxInFlight: GROUP_COMMIT_MAX_IN_FLIGHT }));

/** A student's active registration in a course (and what the request's Idempotency-Key stands
 * for), read with those of other requests arriving meanwhile. */
export function findActiveRegistration(sql: Sql, courseId: string, emailKey: string, keyHash: Buffer | null = null): Promise<ActiveLookup> {
  return activeLookupOf(sql)({ courseId, emailKey, keyHash });
}

/** Reminds these registrations (registrar_remind: at most once per 10 minutes each, one
 * transaction); one (empty) result per id, for the group commit. A deadlock with a cancel
 * locking the same rows in another order is the retry policy's (src/db/retry-policy.ts). */
async function remindRegistrations(sql: Sql, registrationIds: readonly string[]): Promise<undefined[]> {
  await sql`SELECT registrar_remind(${registrationIds}::uuid[])`;
  return registrationIds.map(() => undefined);
}

const remindOf = perPool((sql: Sql) =>
  createGroupCommit({ run: (ids: string[]) => runBatch(ids, (members) => remindRegistrations(sql, members)), maxBatch: 1024, maxInFlight: GROUP_COMMIT_MAX_IN_FLIGHT }));

/** The reminder of a duplicate registration, committed (or found not due) with those of other requests arriving meanwhile. */
export async function remindRegistration(sql: Sql, registrationId: string): Promise<void> {
  await remindOf(sql)(registrationId);
}

const groupCommitOf = perPool((sql: Sql) => createGroupCommit({
  run: (batch: RegisterParams[]) => inRegistrationTurn(sql, batch.map((p) => p.courseId), () => registerBatch(sql, batch)),
  maxBatch: GROUP_COMMIT_MAX_BATCH,
  maxInFlight: REGISTRATION_BATCHES_IN_FLIGHT,
  keysOf: (p) => [p.courseId],
  onBatch: (size) => batchObservers.get(sql)?.(size),
}));

/**
 * Registers through the pool's group commit (src/db/group-commit.ts): with other registrations
 * of this process that arrive meanwhile, in one transaction. A request with an Idempotency-Key
 * goes alone, at once: a retry whose first attempt still runs must learn it now (409), not
 * after waiting behind the batch in flight.
 */
export async function register(sql: Sql, params: RegisterParams): Promise<RegisterOutcome> {
  if (params.idempotency !== null) return settledValue((await registerBatch(sql, [params]))[0]!);
  return groupCommitOf(sql)(params);
}

export type CancelOutcome =
  | { outcome: 'cancelled' | 'already-cancelled'; registration: RegistrationRow }
  | { outcome: 'not-found' };

/** Who cancels, as the history records it. */
export type CancelActor = 'student' | 'admin';

export async function cancel(sql: Sql, registrationId: string, actor: CancelActor): Promise<CancelOutcome> {
  // A deadlock with a reminder locking the promoted and the cancelled registration in the
  // other order (src/db/functions/cancel.sql) is the retry policy's (src/db/retry-policy.ts).
  // Its promotion may complete a waiting swap, whose old course it locks first when asked (src/db/swap-locks.ts).
  const [row] = await runWithSwapLocks(sql, 'cancel', (also) => retryTransaction(() => sql<{ result: CancelOutcome }[]>`
    SELECT registrar_cancel(${registrationId}, ${actor}, false, ${also}::text[]) AS result`));
  if (!row) throw new Error('registrar_cancel returned no row');
  return row.result;
}

export async function findRegistration(sql: Sql, id: string): Promise<RegistrationRow | undefined> {
  const [row] = await sql<{ registration: RegistrationRow }[]>`
    SELECT registrar_registration_row(r) AS registration FROM registrations r WHERE r.id = ${id}`;
  return row?.registration;
}

/** Looked up by hash: a B-tree probe on a SHA-256 tells an attacker nothing about the token. */
export async function tokenManagesRegistration(sql: Sql, id: string, tokenHash: Buffer): Promise<boolean> {
  const rows = await sql`SELECT 1 FROM manage_tokens WHERE token_hash = ${tokenHash} AND registration_id = ${id}`;
  return rows.length > 0;
}

export type RegistrationFilter = { courseId: string; status: RegistrationStatus | null; afterSeq: bigint };

type PagedRow = { registration: RegistrationRow; seq: string };

function selectRegistrations(sql: Sql, filter: RegistrationFilter, limit: number | null) {
  return sql<PagedRow[]>`
    SELECT registrar_registration_row(r) AS registration, r.seq::text AS seq
    FROM registrations r
    WHERE r.course_id = ${filter.courseId}
      AND (${filter.status}::registration_status IS NULL OR r.status = ${filter.status}::registration_status)
      AND r.seq > ${filter.afterSeq.toString()}::bigint
    ORDER BY r.seq
    ${limit === null ? sql`` : sql`LIMIT ${limit}`}`;
}

/** One page in arrival order; `next` is the seq of the last row when more may follow. */
export async function listRegistrations(sql: Sql, filter: RegistrationFilter, limit: number): Promise<{ rows: RegistrationRow[]; lastSeq: string | null }> {
  const rows = await selectRegistrations(sql, filter, limit + 1);
  const page = rows.slice(0, limit);
  return { rows: page.map((row) => row.registration), lastSeq: rows.length > limit ? (page.at(-1)?.seq ?? null) : null };
}

/** All matching rows, fetched in batches through a server-side cursor: memory stays flat. */
export async function* streamRegistrations(sql: Sql, filter: RegistrationFilter, batchSize = 500): AsyncGenerator<RegistrationRow> {
  for await (const batch of selectRegistrations(sql, filter, null).cursor(batchSize)) {
    for (const row of batch) yield row.registration;
  }
}
