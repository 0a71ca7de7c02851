// Owns the bench's open loop: requests arrive at a fixed rate whatever the answers do, as students
// arriving do, and go out over a bounded ConnectionPool. Each answer's latency counts from when
// its request was due, not from when a connection took it: time spent in the bench waiting for a
// free connection (a service falling behind the rate) counts too, so a slow service cannot hide
// by slowing its own arrivals down (coordinated omission).
import type { TimedAnswer } from './connection-pool.ts';
import { epochNow } from '../test/support/rush.ts';

/** How often the loop wakes to send what has come due (a few requests per wake at thousands a second). */
const TICK_MS = 1;

/**
 * Sends request `i` at `i / ratePerSecond` seconds after the start, by `send(i)`; resolves with
 * every answer, in index order, its startedAt moved back to when it was due.
 */
export async function runOpenLoop(count: number, ratePerSecond: number, send: (index: number) => Promise<TimedAnswer>, onAnswer?: () => void): Promise<TimedAnswer[]> {
  const startedAt = epochNow();
  const answers: Promise<TimedAnswer>[] = [];
  while (answers.length < count) {
    const due = Math.min(count, Math.floor(((epochNow() - startedAt) * ratePerSecond) / 1000) + 1);
    while (answers.length < due) {
      const index = answers.length;
      const dueAt = startedAt + (index * 1000) / ratePerSecond;
      answers.push(send(index).then((answer) => {
        onAnswer?.();
        return { ...answer, startedAt: Math.min(answer.startedAt, dueAt) };
      }));
    }
    if (answers.length < count) await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  return Promise.all(answers);
}
