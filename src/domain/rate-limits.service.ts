// The shared rate-limit windows as http's limiter (src/http/rate-limit.ts) reads and writes them:
// one round trip adds this process's counts and learns every process's totals.
import type { Sql } from '../db/database.ts';
import { addRateLimitCounts, deleteOldRateLimitWindows, type RateLimitTotal } from '../db/queries/rate-limits.queries.ts';

/** Adds this process's counts and returns the totals of every process for those buckets, plus
 * every bucket of the current window at or over the limit (see addRateLimitCounts). */
export function shareRateLimitCounts(sql: Sql, counts: { bucket: string; windowStart: Date; count: number }[], current: { windowStart: Date; limit: number }): Promise<RateLimitTotal[]> {
  return addRateLimitCounts(sql, counts, current);
}

/** Drops windows no process counts in any more. */
export function forgetOldRateLimitWindows(sql: Sql): Promise<void> {
  return deleteOldRateLimitWindows(sql);
}
