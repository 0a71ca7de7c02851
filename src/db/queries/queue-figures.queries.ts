// SQL for the waiting room's figures per queued course: one call to registrar_queue_figures
// (src/db/functions/queue-figures.sql), one snapshot for every course.
import type { Sql } from '../database.ts';

/** Places by status and the admissions of one queued course, as stored. */
export type QueueFiguresRow = {
  course_id: string;
  ordered_at: Date | null;
  sold_out_at: Date | null;
  admission_rate: number;
  admitted_total: number;
  waiting: number;
  unverified: number;
  admitted: number;
  registered: number;
  expired: number;
  sold_out: number;
  left_queue: number;
  closed: number;
};

export async function selectQueueFigures(sql: Sql): Promise<QueueFiguresRow[]> {
  return sql<QueueFiguresRow[]>`
    SELECT course_id, ordered_at, sold_out_at, admission_rate, admitted_total::float8 AS admitted_total,
      waiting::float8 AS waiting, unverified::float8 AS unverified, admitted::float8 AS admitted,
      registered::float8 AS registered, expired::float8 AS expired, sold_out::float8 AS sold_out,
      left_queue::float8 AS left_queue, closed::float8 AS closed
    FROM registrar_queue_figures()`;
}
