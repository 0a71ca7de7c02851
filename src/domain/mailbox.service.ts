// The built-in mailbox (emails stored once per event, read by the admin newest first), and the
// state of all deliveries: figures the job worker refreshes every second (refreshDeliveryState),
// so reading them costs a few rows however long the queue and the delivery logs are.
import type { Sql } from '../db/database.ts';
import { insertMailboxMessage, listFailedEmails, listMailbox } from '../db/queries/email.queries.ts';
import { deliveryStats, foldDeliveryFigures, queueStats, snapshotQueueStats } from '../db/queries/jobs.queries.ts';
import type { EmailMessage } from './email-message.ts';

/** Delivers an email to the built-in mailbox, once per event: a re-run of its job stores nothing new. */
export async function storeInMailbox(sql: Sql, eventId: string, message: EmailMessage): Promise<void> {
  await insertMailboxMessage(sql, eventId, message);
}

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

/** Folds the delivery figures' changes into their totals and counts the job queue once for every reader. */
export async function refreshDeliveryState(sql: Sql): Promise<void> {
  await Promise.all([foldDeliveryFigures(sql), snapshotQueueStats(sql)]);
}
