// Group commit in the application: calls that arrive while a batch is in flight wait for it and
// then go together, as one batch, in one transaction (one round trip, one WAL flush). Nobody
// waits on a timer: with nothing in flight a call goes at once (a batch of one, or of the calls
// parsed in the same turn of the event loop), so a quiet service answers as fast as one without
// batching, and the batches grow with the load. The wait is bounded by one batch's duration.
// What a failed batch does next (run again, split into members) is `run`'s: src/db/retry-policy.ts.

export type GroupCommitOptions<I, O> = {
  /** Runs one batch; answers one settled result per item, in order (a member may fail alone). */
  run(items: I[]): Promise<PromiseSettledResult<O>[]>;
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
    try {
      options.onBatch?.(batch.length); // inside: a failing observer fails the batch's callers, never strands them
      const results = await options.run(batch.map((w) => w.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} answered ${results.length} results`);
      batch.forEach((w, i) => {
        const result = results[i]!;
        if (result.status === 'fulfilled') w.resolve(result.value);
        else w.reject(result.reason);
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
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
