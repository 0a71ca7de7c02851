// How a race test knows its other side is blocked: a registration statement of the database
// waiting for a lock (a course row, or a row of the same student), seen in pg_stat_activity.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from '../../src/db/database.ts';

/** Resolves once `atLeast` registration statements (registrar_register_batch) of this database wait for a lock; fails after 10 s. */
export async function untilARegistrationWaitsForALock(sql: Sql, atLeast = 1): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [waiting] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND query LIKE '%registrar_register_batch%' AND datname = current_database()`;
    if (waiting!.n >= atLeast) return;
    assert.ok(Date.now() < deadline, 'the registration never waited for a lock');
    await sleep(10);
  }
}
