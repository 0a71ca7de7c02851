// Keeps job leases honest across crashes. graphile-worker treats a locked job as taken for four
// hours; a job worker killed with SIGKILL would sit on its jobs that long. Every job process
// therefore writes a heartbeat for its graphile-worker ids every few seconds, and unlocks the
// jobs of any worker id whose heartbeat is stale (its process is gone: this instance's or
// another's). A live worker's long job is never unlocked: its heartbeat stays fresh.
import type { Sql } from '../db/database.ts';

export type LeaseKeeperOptions = { intervalMs?: number; staleAfterMs?: number; onError?: (error: unknown) => void };

export type LeaseKeeper = { stop(): Promise<void> };

export async function beatAndReap(sql: Sql, workerIds: readonly string[], staleAfterMs: number): Promise<string[]> {
  if (workerIds.length > 0) {
    await sql`
      INSERT INTO job_worker_heartbeats (worker_id, pid, seen_at)
      SELECT unnest(${workerIds as string[]}::text[]), ${process.pid}, now()
      ON CONFLICT (worker_id) DO UPDATE SET seen_at = now(), pid = excluded.pid`;
  }
  const stale = `${staleAfterMs} milliseconds`;
  const dead = await sql<{ locked_by: string }[]>`
    SELECT DISTINCT j.locked_by FROM graphile_worker._private_jobs j
    WHERE j.locked_by IS NOT NULL AND j.locked_at < now() - ${stale}::interval
      AND NOT EXISTS (SELECT 1 FROM job_worker_heartbeats h
                      WHERE h.worker_id = j.locked_by AND h.seen_at > now() - ${stale}::interval)`;
  const unlocked = dead.map((row) => row.locked_by);
  if (unlocked.length > 0) await sql`SELECT graphile_worker.force_unlock_workers(${unlocked}::text[])`;
  await sql`DELETE FROM job_worker_heartbeats WHERE seen_at < now() - interval '1 hour'`;
  return unlocked;
}

export function startLeaseKeeper(sql: Sql, workerIds: () => readonly string[], options: LeaseKeeperOptions = {}): LeaseKeeper {
  const intervalMs = options.intervalMs ?? 2_000;
  const staleAfterMs = options.staleAfterMs ?? 8_000;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = beatAndReap(sql, workerIds(), staleAfterMs).catch((error: unknown) => options.onError?.(error));
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await sql`DELETE FROM job_worker_heartbeats WHERE worker_id = ANY(${workerIds() as string[]}::text[])`.catch(() => undefined);
    },
  };
}
