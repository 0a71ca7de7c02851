// Transactions whose promotions may complete a waiting swap (src/db/functions/swap.sql) lock the
// old registration's course out of the lock order only if it is free at once; when it is not, the
// transaction fails with RGW01 naming that course and student, and runs again here with them
// locked first, in order. Each attempt adds what the one before it met, so a chain of swaps
// (a swap's cancel promoting another swap) gets all its locks within a few attempts.
import type { Sql } from './database.ts';
import { errorCode } from './postgres-errors.ts';

/** Attempts while each meets a waiting swap whose old course is held by another transaction. */
const MAX_SWAP_LOCK_ATTEMPTS = 8;

/** What runs under runWithSwapLocks, as the metrics name it. */
export type SwapLockOperation = 'cancel' | 'swap' | 'course-change';

// Per connection pool (src/db/per-pool.ts): who is told of each run again.
const retryObservers = new WeakMap<Sql, (operation: SwapLockOperation) => void>();

/** Told of each run again after RGW01 on this pool (the metrics' registrar_swap_lock_retries_total). */
export function observeSwapLockRetries(sql: Sql, observer: (operation: SwapLockOperation) => void): void {
  retryObservers.set(sql, observer);
}

/** Runs `run` with the "course\nemail key" pairs to lock first, adding the pair each RGW01 names. */
export async function runWithSwapLocks<T>(sql: Sql, operation: SwapLockOperation, run: (also: string[]) => Promise<T>): Promise<T> {
  const also: string[] = [];
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run([...also]);
    } catch (error) {
      const pair = errorCode(error) === 'RGW01' ? (error as { detail?: string }).detail : undefined;
      if (pair === undefined || attempt >= MAX_SWAP_LOCK_ATTEMPTS) throw error;
      if (!also.includes(pair)) also.push(pair);
      retryObservers.get(sql)?.(operation);
    }
  }
}
