// Turns one-at-a-time calls into batches (src/batching/batcher.ts): the calls made while a batch
// is in flight, or in the same turn of the event loop, go together in the next one. The emails in
// flight each load their event, store their message and record their outcome on their own; a
// batch of them costs one statement instead of one per email, and the batches grow with the
// load without any timer: an idle process sends a lone email's statement at once.
import { createBatcher } from '../batching/batcher.ts';

export type BatchedCall<I, O> = (input: I) => Promise<O>;

/**
 * `run` answers a batch of inputs with one output each, in order; when it throws, every call of
 * the batch rejects with its error. At most `maxBatch` inputs per batch and `maxInFlight`
 * batches at once (the database connections they may hold).
 */
export function batchCalls<I, O>(run: (inputs: I[]) => Promise<readonly O[]>, options: { maxBatch: number; maxInFlight: number }): BatchedCall<I, O> {
  return createBatcher<I, O>({
    maxBatch: options.maxBatch,
    maxInFlight: options.maxInFlight,
    async run(inputs) {
      const outputs = await run(inputs);
      // By position: `run` answers in the order of `inputs`.
      return inputs.map((_, index): PromiseSettledResult<O> => ({ status: 'fulfilled', value: outputs[index]! }));
    },
  });
}
