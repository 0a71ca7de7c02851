// graphile-worker batch jobs. A group commit (src/db/functions/register-batch.sql) adds one
// job per kind for the whole batch, whose payload is the list of entries (one per event), instead
// of one job per event: one job row, one fetch and one completion for up to a few hundred emails.
// Each entry still succeeds or fails on its own: graphile-worker retries a batch job with only
// the entries that failed (a task returns one promise per entry). A job added alone (a cancel, a
// promotion) has a single entry as its payload.

import { setTimeout as sleep } from 'node:timers/promises';

export type Limiter = {
  <T>(run: () => Promise<T>): Promise<T>;
  /**
   * A new bound, and optionally a pace: calls start at least `minIntervalMs` apart. Calls already
   * running finish; waiting ones start as room appears.
   */
  setLimit(limit: number, minIntervalMs?: number): void;
};

/** Runs at most `limit` calls at once (and, with a pace, at most one per interval); the rest wait their turn, in order. */
export function createLimiter(initialLimit: number): Limiter {
  let limit = initialLimit;
  let intervalMs = 0;
  let nextStartAt = 0;
  let active = 0;
  const waiting: (() => void)[] = [];
  const startWaiting = () => {
    while (active < limit && waiting.length > 0) {
      active += 1;
      waiting.shift()!();
    }
  };
  const paced = async () => {
    if (intervalMs === 0) return;
    const now = performance.now();
    const startAt = Math.max(now, nextStartAt);
    nextStartAt = startAt + intervalMs;
    if (startAt > now) await sleep(startAt - now);
  };
  const limited = async <T>(run: () => Promise<T>): Promise<T> => {
    if (active < limit && waiting.length === 0) active += 1;
    else await new Promise<void>((resolve) => waiting.push(resolve)); // its slot is taken for it
    try {
      await paced();
      return await run();
    } finally {
      active -= 1;
      startWaiting();
    }
  };
  return Object.assign(limited, {
    setLimit(next: number, minIntervalMs = 0) {
      limit = Math.max(1, next);
      intervalMs = Math.max(0, minIntervalMs);
      if (intervalMs === 0) nextStartAt = 0;
      startWaiting();
    },
  });
}

/**
 * Runs a job's entries. `beforeRetry` (the retry jitter) runs when an entry failed, before
 * graphile-worker reschedules the job: so it is awaited here, not left to graphile-worker.
 */
export async function runJobEntries(payload: unknown, runEntry: (entry: unknown) => Promise<unknown>, beforeRetry: () => Promise<void>): Promise<void | Promise<unknown>[]> {
  if (!Array.isArray(payload)) {
    try {
      await runEntry(payload);
    } catch (error) {
      await beforeRetry();
      throw error;
    }
    return;
  }
  const results = payload.map((entry) => runEntry(entry));
  const settled = await Promise.allSettled(results);
  if (settled.some((result) => result.status === 'rejected')) await beforeRetry();
  return results;
}
