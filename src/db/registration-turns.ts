// Registration transactions of one connection pool that share a course take turns, in the order
// they asked: the batches of single-course requests and those of multi-course requests (each
// group commit keeps its own batches in flight apart by course, src/db/group-commit.ts). Run side
// by side on a course, a multi-course batch (locked first) writes course rows under a lock-last
// single-course batch, which then finds its course changed and is decided again (RGB01,
// src/db/retry-policy.ts); in turns, nothing of one process changes under another of its
// batches. Transactions on disjoint courses run at once. A transaction waits only for those that
// asked before it, so the turns cannot deadlock.
import type { Sql } from './database.ts';
import { perPool } from './per-pool.ts';

/** Per course, the end of the last transaction that asked for it. */
const lastTurnOf = perPool((_sql: Sql) => new Map<string, Promise<unknown>>());

/** Runs `work` once the pool's registration transactions before it on any of `courses` have ended. */
export function inRegistrationTurn<T>(sql: Sql, courses: readonly string[], work: () => Promise<T>): Promise<T> {
  const turns = lastTurnOf(sql);
  const distinct = [...new Set(courses)];
  // The turns before never reject (each is a `done` below).
  const result = Promise.all(distinct.flatMap((course) => turns.get(course) ?? [])).then(work);
  const done = result.catch(() => undefined);
  for (const course of distinct) turns.set(course, done);
  void done.then(() => {
    for (const course of distinct) if (turns.get(course) === done) turns.delete(course);
  });
  return result;
}
