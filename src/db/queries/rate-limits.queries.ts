// SQL for the shared rate-limit counters.
import type { Sql } from '../database.ts';

export type RateLimitTotal = { bucket: string; window_start: Date; count: number };

/**
 * Adds this process's counts (none is fine) and returns, in one round trip, the totals of every
 * process for those buckets plus every bucket of the current window at or over the limit: a
 * process learns that a client is over the limit even if that client never came to it.
 */
export async function addRateLimitCounts(sql: Sql, counts: { bucket: string; windowStart: Date; count: number }[], current: { windowStart: Date; limit: number }): Promise<RateLimitTotal[]> {
  // Timestamps go as ISO text: postgres.js sends an array of Dates typed as one timestamptz,
  // which the ::timestamptz[] cast refuses.
  return sql<RateLimitTotal[]>`
    WITH added AS (
      INSERT INTO rate_limit_windows (bucket, window_start, count)
      SELECT * FROM unnest(${counts.map((c) => c.bucket)}::text[], ${counts.map((c) => c.windowStart.toISOString())}::timestamptz[], ${counts.map((c) => c.count)}::int[])
      ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limit_windows.count + excluded.count
      RETURNING bucket, window_start, count
    )
    SELECT bucket, window_start, count FROM added
    UNION ALL
    SELECT bucket, window_start, count FROM rate_limit_windows
    WHERE window_start = ${current.windowStart.toISOString()}::timestamptz AND count >= ${current.limit}`;
}

export async function deleteOldRateLimitWindows(sql: Sql): Promise<void> {
  await sql`DELETE FROM rate_limit_windows WHERE window_start < now() - interval '5 minutes'`;
}
