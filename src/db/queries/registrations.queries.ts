// SQL for registrations. Every seat change is one call to a registrar_* function
// (src/db/migrations), so the course lock is held for a single round trip.
import type { RegistrationRow, RegistrationStatus } from '../../domain/registration.ts';
import type { Sql } from '../database.ts';

export type RegisterParams = {
  courseId: string;
  name: string;
  email: string;
  emailKey: string;
  /** Plaintext: its hash is stored, and it rides in the first email's job until sent. */
  manageToken: string;
  idempotency: { keyHash: Buffer; requestHash: Buffer; sealedToken: Buffer } | null;
};

export type RegisterOutcome =
  | { outcome: 'created' | 'existing'; registration: RegistrationRow }
  | { outcome: 'replay'; statusCode: 200 | 201; registration: RegistrationRow; sealedToken: string | null }
  | { outcome: 'key-reused' | 'key-in-progress' | 'course-not-found' | 'registration-closed' | 'course-full' };

export async function register(sql: Sql, params: RegisterParams): Promise<RegisterOutcome> {
  const key = params.idempotency;
  const [row] = await sql<{ result: RegisterOutcome }[]>`
    SELECT registrar_register(${params.courseId}, ${params.name}, ${params.email}, ${params.emailKey},
      ${params.manageToken}, ${key?.keyHash ?? null}, ${key?.requestHash ?? null}, ${key?.sealedToken ?? null}) AS result`;
  if (!row) throw new Error('registrar_register returned no row');
  return row.result;
}

export type CancelOutcome =
  | { outcome: 'cancelled' | 'already-cancelled'; registration: RegistrationRow }
  | { outcome: 'not-found' };

export async function cancel(sql: Sql, registrationId: string): Promise<CancelOutcome> {
  const [row] = await sql<{ result: CancelOutcome }[]>`SELECT registrar_cancel(${registrationId}) AS result`;
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
