// How a race test knows its other side is blocked: a statement of the database waiting for a
// lock (a course row, a row of the same student, a term count), seen in pg_stat_activity.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from '../../src/db/database.ts';

/** Resolves once `atLeast` statements of this database whose text holds `fragment` wait for a lock; fails after 10 s. */
export async function untilAStatementWaitsForALock(sql: Sql, fragment: string, atLeast = 1): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [waiting] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND position(${fragment} IN query) > 0 AND pid <> pg_backend_pid() AND datname = current_database()`;
    if (waiting!.n >= atLeast) return;
    assert.ok(Date.now() < deadline, `fewer than ${atLeast} statements with ${fragment} waited for a lock`);
    await sleep(10);
  }
}

/** Resolves once `atLeast` registration statements (registrar_register_batch) of this database wait for a lock; fails after 10 s. */
export function untilARegistrationWaitsForALock(sql: Sql, atLeast = 1): Promise<void> {
  return untilAStatementWaitsForALock(sql, 'registrar_register_batch', atLeast);
}
