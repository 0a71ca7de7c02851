// An HTTP worker's memory of the waiting places it has created or read, so that GET /queue/{id}
// of a waiting place is answered without the database when that is what reading would show,
// as of at most VIEW_TRUSTED_MS ago (the live stream's tick is 1 s: a page is never shown a
// status older than that).
//
// What a waiting place shows is fixed facts (id, course, name, email, joinedAt, its rank once
// ordered, the hashes of the tokens that were seen to be its own) and arithmetic on its course's
// queue state: position = rank - passed, ahead = position - 1, estimatedWaitSeconds =
// ceil(position / admission rate), as registrar_queue_place_row computes them, with passed never
// less than the place's own last read showed (a view read before a join or read that saw later
// admissions would show the place further back than its student has seen it). The states of all
// queued courses are one small read (registrar_queue_views), made again when the last is older
// than VIEW_REFRESH_MS and a read wants it (no timer: an idle worker reads nothing). A place is
// answered from memory only while all of this holds of the view, read at most VIEW_TRUSTED_MS
// ago: its course still has a queue, is neither sold out nor closed nor past closesAt; the
// place is ranked above the pointer (not yet admitted), or unranked while its course is not
// ordered and opensAt is still ahead (a read after it orders the places); and no place of its
// course has left or been sold out since the view its read started from (gone_total: a waiting
// place leaves the status only by admission, which the pointer shows, by leaving, through any
// process, or by a sold-out tick, which may be over before a view sees sold_out). Anything else (admitted, registered, expired, sold out,
// closed, an unknown token, the admin) is read from the database, whose answer is remembered
// when the place waits. Bounded: at most MAX_PLACES places, the oldest forgotten first.
import type { Sql } from '../db/database.ts';
import { perPool } from '../db/per-pool.ts';
import { type QueuePlaceRow, type QueueViewRow, readQueueViews } from '../db/queries/queue.queries.ts';

const VIEW_REFRESH_MS = 500;
const VIEW_TRUSTED_MS = 1_000;
/** About 300 bytes each: 30 MB at most per worker. */
const MAX_PLACES = 100_000;

type Remembered = {
  row: QueuePlaceRow;
  /** Hex SHA-256 of the tokens seen to be this place's. */
  tokens: Set<string>;
  /** The course's gone_total in the view read before the place was: a larger one makes it be read again. */
  goneTotal: number;
  /** The course's pointer (queue_states.passed) the place was last read with: a view older than
   *  that read would show the place further back than the student has seen it. */
  passed: number;
};

/** The states of the queued courses, as read at `readAt` (performance.now()) or later. */
export type QueueView = { rows: Map<string, QueueViewRow>; readAt: number };

export class QueuePlaceMemory {
  private readonly places = new Map<string, Remembered>();
  private view: QueueView | undefined;
  private reading: Promise<void> | undefined;
  private readonly sql: Sql;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  /** The place as a read would show it now, or undefined: read it from the database. */
  answer(id: string, tokenHash: Buffer): QueuePlaceRow | undefined {
    const view = this.currentView();
    const place = this.places.get(id);
    if (view === undefined || place === undefined || !place.tokens.has(tokenHash.toString('hex'))) return undefined;
    const state = view.rows.get(place.row.course_id);
    const age = performance.now() - view.readAt;
    if (state === undefined || state.sold_out || state.closed || state.gone_total !== place.goneTotal) return undefined;
    if (state.closes_in_ms !== null && state.closes_in_ms - age <= 0) return undefined;
    const { rank } = place.row;
    if (rank === null) {
      if (state.ordered || state.opens_in_ms === null || state.opens_in_ms - age <= 0) return undefined;
      return place.row;
    }
    const passed = Math.max(state.passed, place.passed);
    if (rank <= passed) return undefined;
    const position = rank - passed;
    return {
      ...place.row,
      position,
      ahead: position - 1,
      estimated_wait_seconds: state.admission_rate > 0 ? Math.ceil(position / state.admission_rate) : null,
    };
  }

  /** The view to give remember() with the place a read (or join) about to start answers. */
  viewBefore(): QueueView | undefined {
    return this.view;
  }

  /**
   * A place just created or read with this token: remembered while it waits. `before`: the view
   * of viewBefore() taken before that read started, so that a leave or sell-out committed after
   * the read's snapshot shows as a later gone_total.
   */
  remember(row: QueuePlaceRow, tokenHash: Buffer, before: QueueView | undefined): void {
    const goneTotal = before?.rows.get(row.course_id)?.gone_total;
    if (row.status !== 'waiting' || goneTotal === undefined) {
      this.places.delete(row.id);
      return;
    }
    const tokens = this.places.get(row.id)?.tokens ?? new Set<string>();
    tokens.add(tokenHash.toString('hex'));
    // Only the fixed facts are kept; position, ahead and estimate come from the view.
    this.places.delete(row.id); // to the end of the order of forgetting
    const passed = row.rank !== null && row.position !== null ? row.rank - row.position : 0;
    this.places.set(row.id, { row: { ...row, position: null, ahead: null, estimated_wait_seconds: null }, tokens, goneTotal, passed });
    if (this.places.size > MAX_PLACES) this.places.delete(this.places.keys().next().value!);
  }

  /** Whether the place is remembered with this token: a read by its own student, who waited in
   *  it (the load shedder lets such reads through: src/http/load-shedding.ts). */
  knows(id: string, tokenHash: Buffer): boolean {
    return this.places.get(id)?.tokens.has(tokenHash.toString('hex')) ?? false;
  }

  forget(id: string): void {
    this.places.delete(id);
  }

  /** The view if read at most VIEW_TRUSTED_MS ago; reads it again (once at a time) when older than VIEW_REFRESH_MS. */
  private currentView(): QueueView | undefined {
    const view = this.view;
    const age = view === undefined ? Number.POSITIVE_INFINITY : performance.now() - view.readAt;
    if (age > VIEW_REFRESH_MS && this.reading === undefined) {
      const readAt = performance.now(); // before the query: the view is at least this old
      this.reading = readQueueViews(this.sql)
        .then((rows) => {
          this.view = { rows: new Map(rows.map((row) => [row.course_id, row])), readAt };
        })
        .catch(() => undefined) // the reads go to the database meanwhile, and say what fails
        .finally(() => {
          this.reading = undefined;
        });
    }
    return age <= VIEW_TRUSTED_MS ? view : undefined;
  }
}

const enabledPools = new WeakSet<object>();
const memoryOf = perPool((sql: Sql) => new QueuePlaceMemory(sql));

/** Answer waiting places of this pool from memory (the HTTP workers; tests read their writes at
 *  once across connections, so they enable it only where it is under test). */
export function enableQueuePlaceMemory(sql: Sql): void {
  enabledPools.add(sql);
}

/** The pool's memory of waiting places, if enabled. */
export function queuePlaceMemoryOf(sql: Sql): QueuePlaceMemory | undefined {
  return enabledPools.has(sql) ? memoryOf(sql) : undefined;
}
