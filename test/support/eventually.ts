// Polls a read until its value passes a check: for effects that land after an answer (a job's
// email, a webhook delivery), without asserting on how long they take.

/** Reads until `ok(value)`; after `timeoutMs` without it, fails with the last value read. */
export async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in time; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
