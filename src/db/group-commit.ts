// Group commit in the application: calls that arrive while a batch is in flight wait for it and
// then go together, as one batch, in one transaction (one round trip, one WAL flush). Nobody
// waits on a timer: with nothing in flight a call goes at once (a batch of one, or of the calls
// parsed in the same turn of the event loop), so a quiet service answers as fast as one without
// batching, and the batches grow with the load. The wait is bounded by one batch's duration.
//
// A batch that fails as a whole (an error no member should cause, or a lost connection) is not
// the members' failure: each is tried again alone, so one bad member fails only itself.

export type GroupCommitOptions<I, O> = {
  /** Runs one batch; answers one result per item, in order. */
  run(items: I[]): Promise<O[]>;
  /** Most items in one batch. */
  maxBatch: number;
  /** Batches in flight at once (each holds a database connection). */
  maxInFlight: number;
  /** Told of each batch as it starts (metrics). */
  onBatch?: (size: number) => void;
};

export type GroupCommit<I, O> = (item: I) => Promise<O>;

type Waiting<I, O> = { item: I; resolve(value: O): void; reject(error: unknown): void };

export function createGroupCommit<I, O>(options: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  const queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  async function runBatch(batch: Waiting<I, O>[]): Promise<void> {
    options.onBatch?.(batch.length);
    try {
      const results = await options.run(batch.map((w) => w.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} answered ${results.length} results`);
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      await Promise.all(batch.map((w) => options.run([w.item]).then(([result]) => w.resolve(result!), (alone) => w.reject(alone))));
    }
  }

  function flush(): void {
    scheduled = false;
    while (queue.length > 0 && inFlight < options.maxInFlight) {
      const batch = queue.splice(0, options.maxBatch);
      inFlight += 1;
      void runBatch(batch).finally(() => {
        inFlight -= 1;
        flush();
      });
    }
  }

  const submit = (item: I) => new Promise<O>((resolve, reject) => {
    queue.push({ item, resolve, reject });
    // Calls made in the same turn of the event loop (many requests parsed from one read) join.
    if (!scheduled && inFlight < options.maxInFlight) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  return submit;
}
