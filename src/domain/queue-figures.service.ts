// The waiting room's figures per queued course, as the dashboard and /metrics show them: its
// places by status, the admissions so far and the admission rate of the last minute. Read in one
// statement whose cost is the few places admitted, registered, left or sold out, not the queue's
// length (src/db/functions/queue-figures.sql).
import type { Sql } from '../db/database.ts';
import { type QueueFiguresRow, selectQueueFigures } from '../db/queries/queue-figures.queries.ts';
import type { QueuePlaceStatus } from '../db/queries/queue.queries.ts';

/** Places of a queued course by status. `admitted`: admitted and not yet registered. */
export type QueuePlaceCounts = Record<QueuePlaceStatus, number>;

export type QueueFigures = {
  course: string;
  /** Whether the places are in their order (from opensAt on). */
  ordered: boolean;
  /** Since when no seat and no waitlist place is left; null while there is room. */
  soldOutSince: Date | null;
  /** Admissions per second over the last minute: what the estimates divide by. */
  admissionsPerSecond: number;
  /** Places admitted since the queue began (registered, expired or left since, or admitted now). */
  admittedTotal: number;
  places: QueuePlaceCounts;
};

function toQueueFigures(row: QueueFiguresRow): QueueFigures {
  return {
    course: row.course_id,
    ordered: row.ordered_at !== null,
    soldOutSince: row.sold_out_at,
    admissionsPerSecond: row.admission_rate,
    admittedTotal: row.admitted_total,
    places: {
      unverified: row.unverified,
      waiting: row.waiting,
      admitted: row.admitted,
      registered: row.registered,
      expired: row.expired,
      'sold-out': row.sold_out,
      left: row.left_queue,
      closed: row.closed,
    },
  };
}

/** Every course with a queue, by id. */
export async function readQueueFigures(sql: Sql): Promise<QueueFigures[]> {
  return (await selectQueueFigures(sql)).map(toQueueFigures);
}
