// The service's rate limits count per fixed window of a minute (src/http/rate-limit.ts): a test
// that spends a budget and then expects a refusal must run inside one window.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

export const RATE_LIMIT_WINDOW_MS = 60_000;

/** Waits, if need be, for the next window, so that `needMs` from now stay in one window. */
export async function inOneWindow<T>(needMs: number, run: () => Promise<T>): Promise<T> {
  const left = RATE_LIMIT_WINDOW_MS - (Date.now() % RATE_LIMIT_WINDOW_MS);
  if (left < needMs) await sleep(left + 250);
  const window = Math.floor(Date.now() / RATE_LIMIT_WINDOW_MS);
  const result = await run();
  assert.equal(Math.floor(Date.now() / RATE_LIMIT_WINDOW_MS), window, 'the sequence ran in one rate-limit window');
  return result;
}
