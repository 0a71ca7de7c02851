// SQL for retention (src/domain/retention.service.ts): each statement removes at most `limit` of the oldest
// rows past the retention, through an index on their age (migration 0012), in a transaction of its
// own, so no lock is held for long and a large backlog is worked off in small steps.
import type { Sql } from '../database.ts';

type Batch = { olderThanDays: number; limit: number };

/**
 * What an email job still needs is kept however old: the delivery record and mailbox message of
 * each of its events (without them a retry sends the email again, invariant 4) and the manage
 * token its link carries. `liveEmailsSince` is when the oldest send_email job still to run was
 * queued (oldestLiveEmailJob); rows from then on stay. Each such row was written at or after its
 * job was queued: the job goes in the transaction of its events, the outcomes after it commits.
 */
type EmailBatch = Batch & { liveEmailsSince: string | null };

/**
 * When the oldest send_email job that may still run was queued, as PostgreSQL's text (a Date
 * would drop its microseconds); null when there is none. A job may run while it has attempts
 * left, or while it is locked: graphile-worker counts the attempt as it takes the job, so a job
 * on its last attempt is locked with attempts = max_attempts. Jobs are graphile-worker's tables
 * (pinned version 0.17): _private_jobs, its tasks named in _private_tasks.
 */
export async function oldestLiveEmailJob(sql: Sql): Promise<string | null> {
  const [row] = await sql<{ since: string | null }[]>`
    SELECT min(j.created_at)::text AS since
    FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
    WHERE t.identifier = 'send_email' AND (j.attempts < j.max_attempts OR j.locked_at IS NOT NULL)`;
  return row?.since ?? null;
}

// The older of the retention's limit and the oldest live email job (least() passes over a null).
function emailCutoff(sql: Sql, batch: EmailBatch) {
  return sql`least(now() - make_interval(days => ${batch.olderThanDays}), ${batch.liveEmailsSince}::text::timestamptz)`;
}

/** Messages of the built-in mailbox: its ON CONFLICT keeps a retried email from a second copy. */
export async function deleteOldMailbox(sql: Sql, batch: EmailBatch): Promise<number> {
  const rows = await sql`
    DELETE FROM mailbox WHERE id IN (
      SELECT id FROM mailbox WHERE created_at < ${emailCutoff(sql, batch)}
      ORDER BY created_at LIMIT ${batch.limit})
    RETURNING 1`;
  return rows.length;
}

/**
 * Email outcomes. A job that still runs skips each event with an outcome; one job holds a whole
 * group commit's events and may retry one of them for days, so the others' outcomes stay with it.
 */
export async function deleteOldEmailDeliveries(sql: Sql, batch: EmailBatch): Promise<number> {
  const rows = await sql`
    DELETE FROM email_deliveries WHERE event_id IN (
      SELECT event_id FROM email_deliveries WHERE updated_at < ${emailCutoff(sql, batch)}
      ORDER BY updated_at LIMIT ${batch.limit})
    RETURNING 1`;
  return rows.length;
}

/** Webhook deliveries delivered or failed for good; a pending one stays for its job. */
export async function deleteOldWebhookDeliveries(sql: Sql, batch: Batch): Promise<number> {
  const rows = await sql`
    DELETE FROM webhook_deliveries WHERE id IN (
      SELECT id FROM webhook_deliveries
      WHERE status <> 'pending' AND updated_at < now() - make_interval(days => ${batch.olderThanDays})
      ORDER BY updated_at LIMIT ${batch.limit})
    RETURNING 1`;
  return rows.length;
}

/**
 * Jobs that used up their attempts (graphile-worker deletes the jobs that succeed, never these).
 * Their payload may carry a manage token. A locked job is running and is left alone.
 */
export async function deleteOldDeadJobs(sql: Sql, batch: Batch): Promise<number> {
  const rows = await sql`
    DELETE FROM graphile_worker._private_jobs WHERE id IN (
      SELECT id FROM graphile_worker._private_jobs
      WHERE locked_at IS NULL AND attempts >= max_attempts AND updated_at < now() - make_interval(days => ${batch.olderThanDays})
      LIMIT ${batch.limit})
    RETURNING 1`;
  return rows.length;
}

// updated_at as PostgreSQL's text: a Date would drop its microseconds and stop the mark short.
export type CancelledMark = { updatedAt: string; id: string };

/**
 * The manage tokens of the next `limit` registrations cancelled longer ago than the retention,
 * after `after` in (updated_at, id) order; answers the tokens removed and where to go on from.
 * A cancelled registration never changes again, so a mark once passed never needs a second look.
 * One cancelled since the oldest live email job was queued stays: its cancel email, still to be
 * sent, links to its token (the cancel and its job share a transaction, so one now()).
 */
export async function deleteTokensOfCancelled(sql: Sql, batch: EmailBatch, after: CancelledMark | undefined): Promise<{ deleted: number; registrations: number; mark: CancelledMark | undefined }> {
  const [row] = await sql<{ deleted: number; registrations: number; last_updated_at: string | null; last_id: string | null }[]>`
    WITH cancelled AS (
      SELECT id, updated_at FROM registrations
      WHERE status = 'cancelled' AND updated_at < ${emailCutoff(sql, batch)}
        AND (updated_at, id) > (${after?.updatedAt ?? '-infinity'}::text::timestamptz, ${after?.id ?? '00000000-0000-0000-0000-000000000000'}::text::uuid)
      ORDER BY updated_at, id LIMIT ${batch.limit}
    ), deleted AS (
      DELETE FROM manage_tokens WHERE registration_id IN (SELECT id FROM cancelled) RETURNING 1
    ), last AS (
      SELECT updated_at, id FROM cancelled ORDER BY updated_at DESC, id DESC LIMIT 1
    )
    SELECT (SELECT count(*) FROM deleted)::int AS deleted, (SELECT count(*) FROM cancelled)::int AS registrations,
      (SELECT updated_at::text FROM last) AS last_updated_at, (SELECT id FROM last)::text AS last_id`;
  if (!row || row.last_updated_at === null || row.last_id === null) return { deleted: row?.deleted ?? 0, registrations: 0, mark: after };
  return { deleted: row.deleted, registrations: row.registrations, mark: { updatedAt: row.last_updated_at, id: row.last_id } };
}

/** Of these import ids, the ones still queued or running: their upload files must stay. */
export async function findUnfinishedImports(sql: Sql, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await sql<{ id: string }[]>`
    SELECT id::text FROM imports WHERE id = ANY (${ids}::uuid[]) AND status IN ('queued', 'running')`;
  return new Set(rows.map((row) => row.id));
}

/** Idempotency-Key answers stored more than `hours` ago (a small table: one statement). */
export async function deleteIdempotencyKeysOlderThan(sql: Sql, hours: number): Promise<number> {
  const rows = await sql`DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ${hours}) RETURNING 1`;
  return rows.length;
}
