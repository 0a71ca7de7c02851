// Turns one-at-a-time calls into batches, as DataLoader does: the calls that arrive while a batch
// is in flight wait for it and then go together, as the next batch. Nobody waits on a timer: with
// room in flight a call goes at the next turn of the event loop (a batch of one, or of the calls
// made in the same turn), so an idle process answers as fast as one without batching, and the
// batches grow with the load. The wait is bounded by one batch's duration. Each caller gets its
// own item's result or error; a batch that throws fails its own callers, never the next batch's.
// The group commit (src/db/group-commit.ts) and the jobs' batched statements
// (src/jobs/batch-calls.ts) are this, each with its own `run`.
//
// Several batches may be in flight (`maxInFlight`). With `keysOf`, a batch holds its items' keys
// while in flight, and a call whose key a batch in flight holds waits for it in the queue: batches
// in flight never share a key, and the calls for one key gather into one large batch at a time
// instead of many small ones. The in-flight bound then adapts to the load by itself: one batch
// for one hot key, up to `maxInFlight` for calls spread over many keys.

export type BatcherOptions<I, O> = {
  /** Runs one batch; answers one settled result per item, in order (a member may fail alone). */
  run(items: I[]): Promise<PromiseSettledResult<O>[]>;
  /** Most items in one batch. */
  maxBatch: number;
  /** Batches in flight at once. */
  maxInFlight: number;
  /** The keys an item holds while its batch is in flight: no two batches in flight share one. Without it, any items go together. */
  keysOf?: (item: I) => readonly string[];
  /** Told of each batch as it starts (metrics). */
  onBatch?: (size: number) => void;
};

export type Batcher<I, O> = (item: I) => Promise<O>;

type Waiting<I, O> = { item: I; resolve(value: O): void; reject(error: unknown): void };

export function createBatcher<I, O>(options: BatcherOptions<I, O>): Batcher<I, O> {
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

  return function submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      // setImmediate, not a microtask: calls made in the same turn of the event loop join (many
      // requests parsed from one read, the entries of a job reaching here over several microtasks).
      if (!scheduled && inFlight < options.maxInFlight) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  };
}
