// The built-in mailbox (emails stored once per event, read by the admin newest first), and the
// state of all deliveries: figures the job worker refreshes every second (refreshDeliveryState),
// so reading them costs a few rows however long the queue and the delivery logs are.
import type { Sql } from '../db/database.ts';
import { type FailedEmailRow, insertMailboxMessages, listFailedEmails, type MailboxEntry, listMailbox, type MailboxRow } from '../db/queries/email.queries.ts';
import { deliveryStats, type DeliveryStatsRow, foldDeliveryFigures, queueStats, type QueueStatsRow, snapshotQueueStats } from '../db/queries/jobs.queries.ts';

/** Delivers emails to the built-in mailbox, a batch in one statement, once per event: a re-run of a job stores nothing new. */
export async function storeInMailbox(sql: Sql, entries: readonly MailboxEntry[]): Promise<void> {
  await insertMailboxMessages(sql, entries);
}

/** A page of the mailbox, newest first; `next` is the cursor of the following page, if any. */
export async function readMailbox(sql: Sql, query: { to?: string | undefined; after?: string | undefined; limit: number }): Promise<{ rows: MailboxRow[]; next: string | null }> {
  const rows = await listMailbox(sql, { recipient: query.to ?? null, beforeId: query.after ?? null, limit: query.limit + 1 });
  const page = rows.slice(0, query.limit);
  return { rows: page, next: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null };
}

/** The job queue per task, the delivery totals, and the latest emails that failed for good. */
export type DeliveryOverview = { queues: QueueStatsRow[]; totals: DeliveryStatsRow; recentFailures: FailedEmailRow[] };

export async function readDeliveryState(sql: Sql): Promise<DeliveryOverview> {
  const [queues, totals, recentFailures] = await Promise.all([queueStats(sql), deliveryStats(sql), listFailedEmails(sql, 20)]);
  return { queues, totals, recentFailures };
}

/** Folds the delivery figures' changes into their totals and counts the job queue once for every reader. */
export async function refreshDeliveryState(sql: Sql): Promise<void> {
  await Promise.all([foldDeliveryFigures(sql), snapshotQueueStats(sql)]);
}
