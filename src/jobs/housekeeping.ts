// Periodic cleanup in the job process, on timers: expired Idempotency-Key answers every five
// minutes and retention every ten (src/domain/retention.service.ts), the delivery figures every
// second (refreshDeliveryState), which keeps the dashboards' and /admin/jobs' figures a matter of
// a few rows, and the waiting rooms' admission tick every 500 ms (admitFromQueues,
// src/domain/queue.service.ts). Each is idempotent or serialized in the database (a tick of a
// course holds its queue state's row lock), so every instance may run it. Every second, the waitlist
// offers past their deadline are settled (settleDueOffers, src/domain/offers.service.ts): an expiry
// missed while the job worker was down is decided at its first tick after the restart.
import type { Sql } from '../db/database.ts';
import { refreshDeliveryState } from '../domain/mailbox.service.ts';
import { settleDueOffers } from '../domain/offers.service.ts';
import { admitFromQueues } from '../domain/queue.service.ts';
import { createRetention, deleteExpiredIdempotencyKeys, type RetentionReport } from '../domain/retention.service.ts';

const IDEMPOTENCY_EVERY_MS = 5 * 60_000;
const RETENTION_FIRST_MS = 10_000;
const RETENTION_EVERY_MS = 10 * 60_000;
const FIGURES_EVERY_MS = 1_000;
const ADMISSION_EVERY_MS = 500;
const OFFERS_EVERY_MS = 1_000;

export type HousekeepingOptions = {
  retentionDays: number;
  dataDir: string;
  onRetention?: (report: RetentionReport) => void;
};

/** Runs `task` every `everyMs` (first after `firstMs`), never two at once; stop() awaits the one running. */
function every(firstMs: number, everyMs: number, task: () => Promise<unknown>, onError: (error: unknown) => void) {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = task().then(() => undefined, onError).finally(() => {
      running = undefined;
    });
  };
  const first = setTimeout(tick, firstMs);
  const timer = setInterval(tick, everyMs);
  first.unref();
  timer.unref();
  return async () => {
    clearTimeout(first);
    clearInterval(timer);
    await running;
  };
}

export function startHousekeeping(sql: Sql, onError: (error: unknown) => void, options: HousekeepingOptions): () => Promise<void> {
  const retention = createRetention(sql);
  const aborted = new AbortController();
  const stops = [
    every(IDEMPOTENCY_EVERY_MS, IDEMPOTENCY_EVERY_MS, () => deleteExpiredIdempotencyKeys(sql), onError),
    every(FIGURES_EVERY_MS, FIGURES_EVERY_MS, () => refreshDeliveryState(sql), onError),
    every(ADMISSION_EVERY_MS, ADMISSION_EVERY_MS, () => admitFromQueues(sql), onError),
    every(OFFERS_EVERY_MS, OFFERS_EVERY_MS, () => settleDueOffers(sql), onError),
    every(RETENTION_FIRST_MS, RETENTION_EVERY_MS, async () => {
      const report = await retention.run({ retentionDays: options.retentionDays, dataDir: options.dataDir, signal: aborted.signal });
      options.onRetention?.(report);
    }, (error) => {
      if (!aborted.signal.aborted) onError(error);
    }),
  ];
  return async () => {
    aborted.abort();
    await Promise.all(stops.map((stop) => stop()));
  };
}
