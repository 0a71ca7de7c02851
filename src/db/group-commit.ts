// Group commit in the application: calls that arrive while a batch is in flight wait for it and
// then go together, as one batch, in one transaction (one round trip, one WAL flush). The
// batching itself (no timer, bounded batches, each caller its own result) is
// src/batching/batcher.ts; what a failed batch does next (run again, split into members) is
// `run`'s: src/db/retry-policy.ts.
//
// Several batches in flight (`maxInFlight`) keep several of a worker's connections busy, so that
// their WAL flushes overlap in PostgreSQL. With `keysOf` (the courses of an item) batches in
// flight never share a course, so they never meet on a course lock, and the calls for one hot
// course gather into one large batch at a time instead of many small ones queueing on its lock.
import { type Batcher, type BatcherOptions, createBatcher } from '../batching/batcher.ts';

/** `maxInFlight`: each batch in flight holds a database connection; `keysOf`: the courses an item locks. */
export type GroupCommitOptions<I, O> = BatcherOptions<I, O>;

export type GroupCommit<I, O> = Batcher<I, O>;

export function createGroupCommit<I, O>(options: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  return createBatcher(options);
}
