// What the open streams of queue places (GET /queue/{id}/events) read: many places at once, the
// admission each stream's holder may see, and which statuses end a stream.
import type { Sql } from '../db/database.ts';
import { findQueuePlaces } from '../db/queries/queue-watch.queries.ts';
import type { QueuePlaceRow, QueuePlaceStatus } from '../db/queries/queue.queries.ts';
import { admissionTokenFor } from '../security/tokens.ts';
import type { QueueCredential } from './queue.service.ts';

/** A place in one of these statuses never changes again. */
const FINAL_STATUSES: ReadonlySet<QueuePlaceStatus> = new Set(['registered', 'expired', 'sold-out', 'left', 'closed']);

export function isFinalQueueStatus(status: QueuePlaceStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/** The places with these ids, by id, with their live positions (one statement for all). */
export async function readQueuePlaces(sql: Sql, ids: readonly string[]): Promise<Map<string, QueuePlaceRow>> {
  const rows = await findQueuePlaces(sql, ids);
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * The admission a credential's holder is shown while the place is admitted, as GET /queue/{id}
 * shows it: derived from the queue token, so the admin (who has none) sees none. Computed once
 * per stream, shown only in the messages where the place is admitted.
 */
export function admissionForHolder(credential: QueueCredential): string | null {
  return credential.kind === 'queue-token' ? admissionTokenFor(credential.token) : null;
}
