// Retry timing for jobs. graphile-worker retries a failed job after exp(min(attempts, 10))
// seconds (2.7 s, 7.4 s, 20 s, ... up to 6 h); a task that fails transiently first pushes the
// job's run_at forward by a random jitter, which graphile-worker's fail_job adds to that
// backoff (run_at = greatest(now(), run_at) + backoff), so jobs that failed together (an SMTP
// outage) do not all retry in the same second.
import type { Sql } from '../db/database.ts';

export function retryJitterSeconds(attempts: number, random: () => number = Math.random): number {
  return random() * 0.5 * Math.exp(Math.min(attempts, 10));
}

export async function addRetryJitter(sql: Sql, jobId: string, attempts: number): Promise<void> {
  // _private_jobs is graphile-worker's table (pinned version); only run_at of our own locked job changes.
  await sql`
    UPDATE graphile_worker._private_jobs SET run_at = now() + make_interval(secs => ${retryJitterSeconds(attempts)})
    WHERE id = ${jobId}`;
}
