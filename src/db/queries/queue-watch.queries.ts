// SQL for the open streams of queue places (GET /queue/{id}/events): the places of many streams
// read in one statement, each as registrar_queue_place_row builds it for GET /queue/{id}.
import type { Sql } from '../database.ts';
import type { QueuePlaceRow } from './queue.queries.ts';

/**
 * The places with these ids (unknown ones are left out), with their live positions: one index
 * probe per place and one per course's queue state, no count over places. It does not order a
 * course's places when that is due (a read of one place or the admission tick does that).
 */
export async function findQueuePlaces(sql: Sql, ids: readonly string[]): Promise<QueuePlaceRow[]> {
  if (ids.length === 0) return [];
  const rows = await sql<{ place: QueuePlaceRow }[]>`
    SELECT registrar_queue_place_row(p, s) AS place
    FROM queue_places p JOIN queue_states s ON s.course_id = p.course_id
    WHERE p.id = ANY(${ids as string[]}::uuid[])`;
  return rows.map((row) => row.place);
}
