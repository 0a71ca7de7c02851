// The waiting room's series on /metrics, read from the database at scrape time. Only the job
// process registers them, so the cluster's aggregation sees each series once (and takes the
// max, should two processes ever report one): the figures are the database's, not a process's.
import client from 'prom-client';

/** A queued course's figures as the domain reads them (readQueueFigures). */
export type QueueFiguresSample = {
  course: string;
  ordered: boolean;
  soldOutSince: Date | null;
  admissionsPerSecond: number;
  admittedTotal: number;
  places: Record<string, number>;
};

/** One read per scrape: the gauges' collect() calls of one scrape share it. */
const READ_REUSE_MS = 500;

let registered = false;

/**
 * Registers registrar_queue_* in prom-client's global registry (once per process), each read
 * through `read` when scraped. A failed read leaves the series out of that scrape (and is told to `onError`).
 */
export function registerQueueMetrics(read: () => Promise<readonly QueueFiguresSample[]>, onError: (error: unknown) => void): void {
  if (registered) return;
  registered = true;
  let last: { at: number; figures: Promise<readonly QueueFiguresSample[]> } | undefined;
  const figures = () => {
    if (!last || Date.now() - last.at >= READ_REUSE_MS) {
      const reading = read().catch((error: unknown) => {
        onError(error);
        return [];
      });
      last = { at: Date.now(), figures: reading };
    }
    return last.figures;
  };
  /** collect() for a metric set afresh at each scrape, so a course whose queue went is gone. */
  function eachScrape<M extends { reset(): void }>(fill: (metric: M, rooms: readonly QueueFiguresSample[]) => void) {
    return async function collect(this: M) {
      const rooms = await figures();
      this.reset();
      fill(this, rooms);
    };
  }

  new client.Gauge({
    name: 'registrar_queue_places',
    help: 'Places of a queued course by status (unverified, waiting, admitted: admitted and not yet registered, registered, expired, sold-out, left, closed)',
    labelNames: ['course', 'status'],
    aggregator: 'max',
    collect: eachScrape<client.Gauge<string>>((gauge, rooms) => {
      for (const room of rooms) for (const [status, n] of Object.entries(room.places)) gauge.set({ course: room.course, status }, n);
    }),
  });
  // One series per course; a course whose value is undefined has none in that scrape.
  const perCourse: [name: string, help: string, value: (room: QueueFiguresSample) => number | undefined][] = [
    ['registrar_queue_admission_rate', 'Admissions per second of a queued course over the last minute (what its waiting estimates divide by)', (room) => room.admissionsPerSecond],
    ['registrar_queue_ordered', 'Whether a queued course\'s places are in their order (1 from opensAt on, 0 while joining before it)', (room) => (room.ordered ? 1 : 0)],
    ['registrar_queue_sold_out_timestamp_seconds', 'Since when a queued course has no seat and no waitlist place left (Unix time); only courses sold out now', (room) => (room.soldOutSince ? room.soldOutSince.getTime() / 1000 : undefined)],
  ];
  for (const [name, help, value] of perCourse) {
    new client.Gauge({
      name, help, labelNames: ['course'], aggregator: 'max',
      collect: eachScrape<client.Gauge<string>>((gauge, rooms) => {
        for (const room of rooms) {
          const n = value(room);
          if (n !== undefined) gauge.set({ course: room.course }, n);
        }
      }),
    });
  }
  new client.Counter({
    name: 'registrar_queue_admitted_total',
    help: 'Places of a queued course admitted since its queue began',
    labelNames: ['course'],
    aggregator: 'max',
    collect: eachScrape<client.Counter<string>>((counter, rooms) => {
      for (const room of rooms) counter.inc({ course: room.course }, room.admittedTotal);
    }),
  });
}
