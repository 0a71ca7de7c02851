// Turns one-at-a-time calls into batches (as DataLoader does): the calls made while a batch is in
// flight, or in the same turn of the event loop, go together in the next one. The emails in
// flight each load their event, store their message and record their outcome on their own; a
// batch of them costs one statement instead of one per email, and the batches grow with the
// load without any timer: an idle process sends a lone email's statement at once.

export type BatchedCall<I, O> = (input: I) => Promise<O>;

/**
 * `run` answers a batch of inputs with one output each, in order; when it throws, every call of
 * the batch rejects with its error. At most `maxBatch` inputs per batch and `maxInFlight`
 * batches at once (the database connections they may hold).
 */
export function batchCalls<I, O>(run: (inputs: I[]) => Promise<readonly O[]>, options: { maxBatch: number; maxInFlight: number }): BatchedCall<I, O> {
  type Waiting = { input: I; resolve: (output: O) => void; reject: (error: unknown) => void };
  let waiting: Waiting[] = [];
  let inFlight = 0;
  let scheduled = false;
  const start = (batch: Waiting[]) => {
    inFlight += 1;
    run(batch.map((call) => call.input)).then(
      (outputs) => batch.forEach((call, index) => call.resolve(outputs[index]!)),
      (error: unknown) => batch.forEach((call) => call.reject(error)),
    ).finally(() => {
      inFlight -= 1;
      flush();
    });
  };
  const flush = () => {
    scheduled = false;
    while (waiting.length > 0 && inFlight < options.maxInFlight) {
      const batch = waiting.slice(0, options.maxBatch);
      waiting = waiting.slice(batch.length);
      start(batch);
    }
  };
  return (input) => new Promise<O>((resolve, reject) => {
    waiting.push({ input, resolve, reject });
    // setImmediate, not a microtask: the entries of a job reach here over several microtasks.
    if (!scheduled && inFlight < options.maxInFlight) {
      scheduled = true;
      setImmediate(flush);
    }
  });
}
