// Holds POST /register's 403 not-admitted answers for a while before they are written
// (NOT_ADMITTED_HOLD_MS). A registration for a queued course without a valid admission stays
// refused until its student is admitted, and a student learns of the admission from the queue
// (the place's page, stream or email), never by retrying: the wait costs a real student
// nothing. A bot hammering the route in a loop, though, gets one answer per hold on each
// connection instead of thousands a second, and the workers' event loops are left to the
// admitted students, whose registrations otherwise wait behind every bot request read before
// them (docs/benchmarks.md, "Refusals held"). A held answer is a timer, no database and no CPU;
// beyond maxHeld at once they are written at once, so a bot opening connections by the thousand
// cannot make the holds cost memory without bound. Closing the server writes them all.
import type { onSendHookHandler } from 'fastify';

/** Held answers per process, at most: a few KiB each (the request, its socket). */
const DEFAULT_MAX_HELD = 10_000;

export type RefusalHold = {
  /** The route's onSend hook: a 403 waits for the hold, anything else goes at once. */
  readonly hook: onSendHookHandler;
  /** Answers held now. */
  readonly held: number;
  /** Writes every held answer now, and the later ones at once (the server is closing). */
  releaseAll(): void;
};

export function createRefusalHold(holdMs: number, maxHeld = DEFAULT_MAX_HELD): RefusalHold {
  const waiting = new Map<NodeJS.Timeout, () => void>();
  let closing = false;

  const hold = (): Promise<void> | undefined => {
    if (closing || waiting.size >= maxHeld) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(timer);
        resolve();
      }, holdMs);
      waiting.set(timer, resolve);
    });
  };

  return {
    hook: async function holdNotAdmitted(_request, reply, payload) {
      if (reply.statusCode === 403) await hold();
      return payload;
    },
    get held() {
      return waiting.size;
    },
    releaseAll() {
      closing = true;
      for (const [timer, resolve] of waiting) {
        clearTimeout(timer);
        resolve();
      }
      waiting.clear();
    },
  };
}
