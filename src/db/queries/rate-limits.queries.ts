// SQL for the shared rate-limit counters.
import type { Sql } from '../database.ts';

/** Adds this process's counts and returns the totals of every process for those windows. */
export async function addRateLimitCounts(sql: Sql, counts: { bucket: string; windowStart: Date; count: number }[]): Promise<{ bucket: string; window_start: Date; count: number }[]> {
  return sql<{ bucket: string; window_start: Date; count: number }[]>`
    INSERT INTO rate_limit_windows (bucket, window_start, count)
    SELECT * FROM unnest(${counts.map((c) => c.bucket)}::text[], ${counts.map((c) => c.windowStart)}::timestamptz[], ${counts.map((c) => c.count)}::int[])
    ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limit_windows.count + excluded.count
    RETURNING bucket, window_start, count`;
}

export async function deleteOldRateLimitWindows(sql: Sql): Promise<void> {
  await sql`DELETE FROM rate_limit_windows WHERE window_start < now() - interval '5 minutes'`;
}
