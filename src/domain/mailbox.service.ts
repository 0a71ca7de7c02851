// The built-in mailbox as the admin reads it (newest first), and the state of all deliveries.
import type { Sql } from '../db/database.ts';
import { listFailedEmails, listMailbox } from '../db/queries/email.queries.ts';
import { deliveryStats, queueStats } from '../db/queries/jobs.queries.ts';

export type MailMessage = { id: string; messageId: string; from: string; to: string; subject: string; text: string; html: string; createdAt: string };

export async function readMailbox(sql: Sql, query: { to?: string | undefined; after?: string | undefined; limit: number }): Promise<{ items: MailMessage[]; next: string | null }> {
  const rows = await listMailbox(sql, { recipient: query.to ?? null, beforeId: query.after ?? null, limit: query.limit + 1 });
  const page = rows.slice(0, query.limit);
  return {
    items: page.map((row) => ({ id: row.id, messageId: row.message_id, from: row.sender, to: row.recipient, subject: row.subject, text: row.text_body, html: row.html_body, createdAt: row.created_at.toISOString() })),
    next: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null,
  };
}

export type QueueState = { task: string; queued: number; running: number; retrying: number; dead: number; oldestQueuedSeconds: number | null };

export type DeliveryState = {
  queues: QueueState[];
  emails: { sent: number; failed: number; recentFailures: { eventId: string; to: string; messageId: string; attempts: number; error: string | null; at: string }[] };
  webhooks: { delivered: number; failed: number; pending: number };
};

export async function readDeliveryState(sql: Sql): Promise<DeliveryState> {
  const [queues, stats, failures] = await Promise.all([queueStats(sql), deliveryStats(sql), listFailedEmails(sql, 20)]);
  return {
    queues: queues.map((q) => ({ task: q.task, queued: q.queued, running: q.running, retrying: q.retrying, dead: q.dead, oldestQueuedSeconds: q.oldest_queued_seconds })),
    emails: {
      sent: stats.emails_sent,
      failed: stats.emails_failed,
      recentFailures: failures.map((f) => ({ eventId: f.event_id, to: f.recipient, messageId: f.message_id, attempts: f.attempts, error: f.last_error, at: f.updated_at.toISOString() })),
    },
    webhooks: { delivered: stats.webhooks_delivered, failed: stats.webhooks_failed, pending: stats.webhooks_pending },
  };
}
