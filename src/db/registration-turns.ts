// One registration transaction at a time per connection pool: the batches of single-course
// requests and those of multi-course requests take turns. Run side by side, a multi-course batch
// (locked first) writes course rows under a lock-last single-course batch, which then finds its
// courses changed and is decided again (RGB01, src/db/retry-policy.ts); in turns, nothing of one
// process changes under another of its batches.
import type { Sql } from './database.ts';
import { perPool } from './per-pool.ts';

const lastTurnOf = perPool((_sql: Sql) => ({ done: Promise.resolve() as Promise<unknown> }));

/** Runs `work` once the pool's registration transaction before it has ended. */
export function inRegistrationTurn<T>(sql: Sql, work: () => Promise<T>): Promise<T> {
  const turns = lastTurnOf(sql);
  const result = turns.done.then(work, work);
  turns.done = result.catch(() => undefined);
  return result;
}
