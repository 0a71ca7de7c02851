// Periodic cleanup in the job process: Idempotency-Key answers are kept 48 hours (at least the
// 24 the IETF draft asks for), then deleted. Idempotent and cheap (an index on created_at), so
// every instance may run it.
import type { Sql } from '../db/database.ts';

const EVERY_MS = 5 * 60_000;

export async function deleteExpiredIdempotencyKeys(sql: Sql): Promise<number> {
  const rows = await sql`DELETE FROM idempotency_keys WHERE created_at < now() - interval '48 hours' RETURNING 1`;
  return rows.length;
}

export function startHousekeeping(sql: Sql, onError: (error: unknown) => void): () => void {
  const timer = setInterval(() => void deleteExpiredIdempotencyKeys(sql).catch(onError), EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
