// Group commit in the application: calls that arrive while a batch is in flight wait for it and
// then go together, as one batch, in one transaction (one round trip, one WAL flush). Nobody
// waits on a timer: with nothing in flight a call goes at once (a batch of one, or of the calls
// parsed in the same turn of the event loop), so a quiet service answers as fast as one without
// batching, and the batches grow with the load. The wait is bounded by one batch's duration.
// What a failed batch does next (run again, split into members) is `run`'s: src/db/retry-policy.ts.
//
// Several batches may be in flight (`maxInFlight`), so that a worker keeps several of its
// connections busy and their WAL flushes overlap in PostgreSQL. With `keysOf` (the courses of an
// item), a batch holds its keys while in flight and a call whose key a batch in flight holds
// waits for it in the queue: batches in flight never share a key, so they never meet on a course
// lock, and the calls for one hot course gather into one large batch at a time instead of many
// small ones queueing on its lock. The in-flight bound then adapts to the load by itself: one
// batch for one hot course, up to `maxInFlight` for calls spread over many courses.

export type GroupCommitOptions<I, O> = {
  /** Runs one batch; answers one settled result per item, in order (a member may fail alone). */
  run(items: I[]): Promise<PromiseSettledResult<O>[]>;
  /** Most items in one batch. */
  maxBatch: number;
  /** Batches in flight at once (each holds a database connection). */
  maxInFlight: number;
  /** The keys an item locks (its courses): no two batches in flight share one. Without it, any items go together. */
  keysOf?: (item: I) => readonly string[];
  /** Told of each batch as it starts (metrics). */
  onBatch?: (size: number) => void;
};

export type GroupCommit<I, O> = (item: I) => Promise<O>;

type Waiting<I, O> = { item: I; resolve(value: O): void; reject(error: unknown): void };

export function createGroupCommit<I, O>(options: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  let queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;
  /** The keys of the batches in flight. */
  const held = new Set<string>();
  const { keysOf } = options;

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

  /** The next batch, taken from the queue in arrival order: the calls none of whose keys a batch in flight holds. */
  function takeBatch(): { batch: Waiting<I, O>[]; keys: string[] } {
    if (keysOf === undefined) return { batch: queue.splice(0, options.maxBatch), keys: [] };
    const batch: Waiting<I, O>[] = [];
    const rest: Waiting<I, O>[] = [];
    const keys = new Set<string>();
    for (const waiting of queue) {
      const itemKeys = batch.length < options.maxBatch ? keysOf(waiting.item) : undefined;
      if (itemKeys !== undefined && !itemKeys.some((key) => held.has(key))) {
        batch.push(waiting);
        for (const key of itemKeys) keys.add(key);
      } else {
        rest.push(waiting);
      }
    }
    queue = rest;
    return { batch, keys: [...keys] };
  }

  function flush(): void {
    scheduled = false;
    while (queue.length > 0 && inFlight < options.maxInFlight) {
      const { batch, keys } = takeBatch();
      if (batch.length === 0) return; // every call waits for a key held in flight
      for (const key of keys) held.add(key);
      inFlight += 1;
      void runBatch(batch).finally(() => {
        for (const key of keys) held.delete(key);
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
