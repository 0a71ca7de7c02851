// How far behind this process is: event-loop delay and heap, sampled every few hundred ms, read
// by load shedding on every request (a field read, no work on the hot path).
//
// Why not @fastify/under-pressure's reading: it turns an interval with no histogram sample into
// Infinity. An interval has no sample when the loop stalled through all of it, once (a worker
// compiling its modules at start, a busy neighbour on a shared 2-core machine), and that reading
// refuses the whole next interval as overloaded: 503s with every bound far out of reach. Here
// such an interval counts for how late the sampling timer fired.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

export type ProcessPressure = {
  /** Event-loop delay over the last interval, in ms: the histogram's mean, or the longest stall if more. */
  eventLoopDelayMs(): number;
  heapUsedBytes(): number;
  stop(): void;
};

const RESOLUTION_MS = 10;

export function watchProcessPressure(intervalMs = 250): ProcessPressure {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  let delayMs = 0;
  let heapUsed = getHeapStatistics().used_heap_size;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const lateMs = Math.max(0, now - last - intervalMs);
    last = now;
    // The histogram's delays include its own resolution: a loop that is idle reads ~10 ms. Its
    // mean hides one long stall among many short turns; the sampling timer's own lateness shows it.
    const meanMs = histogram.count > 0 ? Math.max(0, histogram.mean / 1e6 - RESOLUTION_MS) : 0;
    delayMs = Math.max(meanMs, lateMs);
    heapUsed = getHeapStatistics().used_heap_size;
    histogram.reset();
  }, intervalMs);
  timer.unref();
  return {
    eventLoopDelayMs: () => delayMs,
    heapUsedBytes: () => heapUsed,
    stop() {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
