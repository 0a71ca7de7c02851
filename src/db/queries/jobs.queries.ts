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
 * failure), dead (attempts used up), and the age of the oldest job ready to run.
 */
export async function queueStats(sql: Sql): Promise<QueueStatsRow[]> {
  return sql<QueueStatsRow[]>`
    SELECT t.identifier AS task,
      count(j.id) FILTER (WHERE j.locked_at IS NULL AND j.attempts < j.max_attempts)::int AS queued,
      count(j.id) FILTER (WHERE j.locked_at IS NOT NULL)::int AS running,
      count(j.id) FILTER (WHERE j.locked_at IS NULL AND j.attempts > 0 AND j.attempts < j.max_attempts)::int AS retrying,
      count(j.id) FILTER (WHERE j.attempts >= j.max_attempts)::int AS dead,
      extract(epoch FROM now() - min(j.run_at) FILTER (WHERE j.locked_at IS NULL AND j.run_at <= now() AND j.attempts < j.max_attempts))::float8 AS oldest_queued_seconds
    FROM graphile_worker._private_tasks t
    LEFT JOIN graphile_worker._private_jobs j ON j.task_id = t.id
    GROUP BY t.identifier ORDER BY t.identifier`;
}

export type DeliveryStatsRow = { emails_sent: number; emails_failed: number; webhooks_delivered: number; webhooks_failed: number; webhooks_pending: number };

export async function deliveryStats(sql: Sql): Promise<DeliveryStatsRow> {
  const [row] = await sql<DeliveryStatsRow[]>`
    SELECT
      (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS emails_sent,
      (SELECT count(*) FROM email_deliveries WHERE status = 'failed')::int AS emails_failed,
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered')::int AS webhooks_delivered,
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'failed')::int AS webhooks_failed,
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS webhooks_pending`;
  if (!row) throw new Error('delivery stats returned no row');
  return row;
}
