// One process's open streams of queue places (GET /queue/{id}/events). One timer for all of
// them: every second one statement reads every watched place (readQueuePlaces), and a stream is
// written only when its place changed enough to tell (shouldSend), at most once a second; no
// stream has a timer or a query of its own, and nothing needs LISTEN (so it works through
// PgBouncer's transaction pooling).
import type { ServerResponse } from 'node:http';
import type { Sql } from '../db/database.ts';
import type { QueuePlaceView } from '../domain/queue.service.ts';
import { isFinalQueueStatus, readQueuePlaces } from '../domain/queue-watch.service.ts';
import { type QueuePlace, toQueuePlace } from './schemas/queue.schemas.ts';

export type QueueStreamHubOptions = {
  sql: Sql;
  /** How often the watched places are read: also the least time between two messages of a stream. */
  tickMs?: number;
  /** A comment line this long after a stream's last write keeps proxies and idle timeouts off it. */
  keepAliveMs?: number;
  /** A change of position and estimate alone, too small to send at once, is sent this long after the stream's last message. */
  positionRefreshMs?: number;
  /** Called with the number of open streams whenever it changes (the metrics' gauge). */
  onCount?: (streams: number) => void;
  /** A failed read of the places (the database down): logged once until a read succeeds again. */
  onReadFailed?: (error: unknown) => void;
};

type QueuePlaceRow = QueuePlaceView['place'];

type Stream = {
  placeId: string;
  response: ServerResponse;
  /** Shown in the messages where the place is admitted (null for the admin). */
  admission: string | null;
  lastJson: string;
  /** The last message's JSON with its figures (position, ahead, estimate) blanked: what is not a countdown. */
  lastShape: string;
  /** The position in the last message. */
  lastPosition: number | null;
  lastMessageAt: number;
  lastWriteAt: number;
  /**
   * The `id:` of the next message: the number of the place's messages this page has had, counted
   * on from the Last-Event-ID a reconnecting page sends. It orders messages; it does not name a
   * state to resume from: every stream begins with the current state, and a restarted worker
   * counts on from what the page sends.
   */
  nextId: number;
};

/**
 * Timer jitter: a tick may run a few milliseconds short of tickMs after the one before; the
 * gap between two messages is still a second to within this.
 */
const TICK_SLACK_MS = 50;

/**
 * Each admission tick moves every waiting place's position, so sending every change would send
 * every stream a message a second through an opening. A position change alone (with its `ahead`
 * and estimate) is sent once the position fell by at least this fraction of the one last sent
 * (at least one place), or positionRefreshMs after the last message: a place 10,000 back hears
 * every 5 s, one 20 back each time two places go, and the page counts its estimate down in
 * between. Anything else (status, admission, `admittedUntil`, a position or estimate appearing
 * or going away) is sent at the next tick.
 */
const POSITION_STEP_FRACTION = 0.1;

function shapeOf(place: QueuePlace): string {
  const blank = (figure: number | null) => (figure === null ? null : 0);
  return JSON.stringify({ ...place, position: blank(place.position), ahead: blank(place.ahead), estimatedWaitSeconds: blank(place.estimatedWaitSeconds) });
}

export class QueueStreamHub {
  private readonly sql: Sql;
  private readonly tickMs: number;
  private readonly keepAliveMs: number;
  private readonly positionRefreshMs: number;
  private readonly onCount: (streams: number) => void;
  private readonly onReadFailed: (error: unknown) => void;
  private readonly byPlace = new Map<string, Set<Stream>>();
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private readFailing = false;
  private stopped = false;

  constructor(options: QueueStreamHubOptions) {
    this.sql = options.sql;
    this.tickMs = options.tickMs ?? 1_000;
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.positionRefreshMs = options.positionRefreshMs ?? 5_000;
    this.onCount = options.onCount ?? (() => undefined);
    this.onReadFailed = options.onReadFailed ?? (() => undefined);
  }

  get size(): number {
    return this.count;
  }

  /**
   * Sends `place` (read by the route, which authenticated the request) as the stream's first
   * message at once, then follows it until it reaches a final status, the client goes, or the
   * hub stops. The response's headers are the route's to write.
   */
  open(response: ServerResponse, place: QueuePlaceRow, options: { admission: string | null; firstId: number }): void {
    const stream: Stream = { placeId: place.id, response, admission: options.admission, lastJson: '', lastShape: '', lastPosition: null, lastMessageAt: 0, lastWriteAt: 0, nextId: options.firstId };
    this.send(stream, place, Date.now());
    if (this.stopped || isFinalQueueStatus(place.status)) {
      response.end();
      return;
    }
    let streams = this.byPlace.get(place.id);
    if (!streams) this.byPlace.set(place.id, streams = new Set());
    streams.add(stream);
    this.setCount(this.count + 1);
    response.on('close', () => this.remove(stream));
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
  }

  /** Ends every stream (the pages reconnect, to another worker); idempotent. */
  stop(): void {
    this.stopped = true;
    for (const streams of this.byPlace.values()) {
      for (const stream of streams) stream.response.end();
    }
    this.byPlace.clear();
    this.setCount(0);
    this.stopTimer();
  }

  private tick(): void {
    const now = Date.now();
    for (const streams of this.byPlace.values()) {
      for (const stream of streams) {
        if (now - stream.lastWriteAt >= this.keepAliveMs) this.write(stream, ': keep-alive\n\n', now);
      }
    }
    // A read slower than a tick is not overlapped by the next one: that tick is skipped.
    if (this.reading) return;
    this.reading = true;
    readQueuePlaces(this.sql, [...this.byPlace.keys()])
      .then((places) => {
        this.readFailing = false;
        this.update(places, now);
      }, (error: unknown) => {
        if (!this.readFailing) this.onReadFailed(error);
        this.readFailing = true;
      })
      .finally(() => {
        this.reading = false;
      });
  }

  private update(places: Map<string, QueuePlaceRow>, tickAt: number): void {
    for (const [id, streams] of this.byPlace) {
      const place = places.get(id);
      if (!place) continue;
      for (const stream of streams) {
        if (tickAt - stream.lastMessageAt < this.tickMs - TICK_SLACK_MS) continue; // coalesced: the next tick sends the state then
        if (this.send(stream, place, tickAt) && isFinalQueueStatus(place.status)) stream.response.end();
      }
    }
  }

  /** Whether a message with this shape and position is due on the stream (POSITION_STEP_FRACTION). */
  private shouldSend(stream: Stream, shape: string, position: number | null, now: number): boolean {
    if (shape !== stream.lastShape) return true;
    const last = stream.lastPosition;
    if (position === null || last === null) return false; // the same shape: both null
    if (last - position >= Math.max(1, last * POSITION_STEP_FRACTION) || position > last) return true;
    return now - stream.lastMessageAt >= this.positionRefreshMs - TICK_SLACK_MS;
  }

  /** Writes the place's message if one is due; whether the stream is up to date now. */
  private send(stream: Stream, place: QueuePlaceRow, now: number): boolean {
    const view = toQueuePlace(place, place.status === 'admitted' ? stream.admission : null);
    const shape = shapeOf(view);
    if (!this.shouldSend(stream, shape, view.position, now)) return true;
    const json = JSON.stringify(view);
    if (json === stream.lastJson) return true;
    // A client that does not read its stream is not buffered for: it gets the state of a later
    // tick once it has drained what it has.
    if (stream.response.writableNeedDrain || stream.response.writableEnded) return false;
    this.write(stream, `id: ${stream.nextId}\nevent: place\ndata: ${json}\n\n`, now);
    stream.nextId += 1;
    stream.lastJson = json;
    stream.lastShape = shape;
    stream.lastPosition = view.position;
    stream.lastMessageAt = now;
    return true;
  }

  private write(stream: Stream, text: string, now: number): void {
    if (stream.response.writableEnded) return;
    stream.response.write(text);
    stream.lastWriteAt = now;
  }

  private remove(stream: Stream): void {
    const streams = this.byPlace.get(stream.placeId);
    if (!streams?.delete(stream)) return;
    if (streams.size === 0) this.byPlace.delete(stream.placeId);
    this.setCount(this.count - 1);
    if (this.count === 0) this.stopTimer();
  }

  private setCount(count: number): void {
    this.count = count;
    this.onCount(count);
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
