// SQL for the state of the job queue and of deliveries, for the admin and the metrics.
import type { Sql } from '../database.ts';

export type QueueStatsRow = {
  task: string;
  queued: number;
  running: number;
  retrying: number;
  dead: number;
  oldest_queued_seconds: number | null;
};

/**
 * Per task: queued (ready or scheduled, not locked), running (locked), retrying (queued after a
 * failure), dead (attempts used up), and the age of the oldest job ready to run. Reads every job
 * in the queue: the job worker runs it once a second (snapshotQueueStats), everyone else reads
 * that snapshot.
 */
const QUEUE_STATS_SQL = `
  SELECT t.identifier AS task,
    count(j.id) FILTER (WHERE j.locked_at IS NULL AND j.attempts < j.max_attempts)::int AS queued,
    count(j.id) FILTER (WHERE j.locked_at IS NOT NULL)::int AS running,
    count(j.id) FILTER (WHERE j.locked_at IS NULL AND j.attempts > 0 AND j.attempts < j.max_attempts)::int AS retrying,
    count(j.id) FILTER (WHERE j.attempts >= j.max_attempts)::int AS dead,
    extract(epoch FROM now() - min(j.run_at) FILTER (WHERE j.locked_at IS NULL AND j.run_at <= now() AND j.attempts < j.max_attempts))::float8 AS oldest_queued_seconds
  FROM graphile_worker._private_tasks t
  LEFT JOIN graphile_worker._private_jobs j ON j.task_id = t.id
  GROUP BY t.identifier`;

/** A snapshot older than this is not trusted (no job worker is taking them): count instead. */
const SNAPSHOT_FRESH_SECONDS = 5;

export async function countQueueStats(sql: Sql): Promise<QueueStatsRow[]> {
  return sql.unsafe<QueueStatsRow[]>(`${QUEUE_STATS_SQL} ORDER BY t.identifier`);
}

/** Counts the queue once and keeps the result in queue_figures for every reader (migration 0012). */
export async function snapshotQueueStats(sql: Sql): Promise<void> {
  await sql.unsafe(`
    INSERT INTO queue_figures (task, queued, running, retrying, dead, oldest_queued_seconds, taken_at)
    SELECT task, queued, running, retrying, dead, oldest_queued_seconds, now() FROM (${QUEUE_STATS_SQL}) s ORDER BY task
    ON CONFLICT (task) DO UPDATE SET queued = excluded.queued, running = excluded.running, retrying = excluded.retrying,
      dead = excluded.dead, oldest_queued_seconds = excluded.oldest_queued_seconds, taken_at = excluded.taken_at`);
}

/**
 * The queue figures from the job worker's snapshot (a row per task, at most a second or so old;
 * the age of the oldest job is brought up to now). Without a fresh snapshot, counted here.
 */
export async function queueStats(sql: Sql): Promise<QueueStatsRow[]> {
  const rows = await sql<QueueStatsRow[]>`
    SELECT task, queued, running, retrying, dead,
      (oldest_queued_seconds + extract(epoch FROM now() - taken_at))::float8 AS oldest_queued_seconds
    FROM queue_figures WHERE taken_at > now() - make_interval(secs => ${SNAPSHOT_FRESH_SECONDS})
    ORDER BY task`;
  return rows.length > 0 ? rows : countQueueStats(sql);
}

export type DeliveryStatsRow = { emails_sent: number; emails_failed: number; webhooks_delivered: number; webhooks_failed: number; webhooks_pending: number };

/**
 * The delivery figures, exact: each total plus its changes not folded yet (kept by the triggers
 * of src/db/functions/delivery-figures.sql). Reads five rows and about a second of changes,
 * however long the delivery logs are.
 */
export const DELIVERY_FIGURES_SQL = `
  SELECT figure, sum(count)::int AS count FROM (
    SELECT figure, count FROM delivery_figures
    UNION ALL
    SELECT figure, change FROM delivery_figure_changes) f
  GROUP BY figure`;

export async function deliveryStats(sql: Sql): Promise<DeliveryStatsRow> {
  const rows = await sql.unsafe<{ figure: keyof DeliveryStatsRow; count: number }[]>(DELIVERY_FIGURES_SQL);
  const stats: DeliveryStatsRow = { emails_sent: 0, emails_failed: 0, webhooks_delivered: 0, webhooks_failed: 0, webhooks_pending: 0 };
  for (const row of rows) stats[row.figure] = row.count;
  return stats;
}

/** Folds the delivery figures' pending changes into their totals; answers the change rows folded. */
export async function foldDeliveryFigures(sql: Sql): Promise<number> {
  const [row] = await sql<{ folded: number }[]>`SELECT registrar_fold_delivery_figures() AS folded`;
  return row?.folded ?? 0;
}
