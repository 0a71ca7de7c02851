// Many requests at once against a running service, each with a deadline, and what came back:
// an answer, or a network failure (reset, refused, or no answer by the deadline). Shared by the
// fault tests (overload, crashes during a rush, rate limits).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import type { Answer } from './http.ts';

/** The service's own requestTimeout: no answer may take longer (plus a little for the client). */
export const REQUEST_DEADLINE_MS = 30_000;

export type Outcome =
  | { ok: true; answer: Answer; elapsedMs: number }
  | { ok: false; error: Error; timedOut: boolean; elapsedMs: number };

export type SendOptions = {
  dispatcher: Dispatcher;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs?: number;
};

/** One request with a deadline; never throws: a failure is an outcome. */
export async function send(baseUrl: string, method: string, path: string, options: SendOptions): Promise<Outcome> {
  const startedAt = performance.now();
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  try {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      dispatcher: options.dispatcher,
      signal: AbortSignal.timeout(options.timeoutMs ?? REQUEST_DEADLINE_MS),
    } as RequestInit);
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    let body: unknown = text;
    if (type.includes('json') && text) body = JSON.parse(text);
    return { ok: true, answer: { status: response.status, headers: response.headers, body }, elapsedMs: performance.now() - startedAt };
  } catch (caught) {
    const error = caught instanceof Error ? caught : new Error(String(caught));
    const timedOut = error.name === 'TimeoutError' || error.name === 'AbortError';
    return { ok: false, error, timedOut, elapsedMs: performance.now() - startedAt };
  }
}

/** fetch's "fetch failed" (reset, refused, closed socket) or our deadline. */
export function isNetworkFailure(error: Error): boolean {
  return (error instanceof TypeError && error.message === 'fetch failed') || error.name === 'TimeoutError' || error.name === 'AbortError';
}

/** The low-level reason of a "fetch failed" (ECONNRESET, UND_ERR_SOCKET, ...), for the figures. */
export function failureReason(error: Error): string {
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timeout';
  const cause = (error as { cause?: { code?: string; name?: string; message?: string } }).cause;
  return cause?.code ?? cause?.name ?? cause?.message ?? error.message;
}

export function countBy<T>(items: Iterable<T>, key: (item: T) => string | number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** Polls `read` until `ok` holds; fails with the last value after `timeoutMs`. */
export async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    let failure: unknown;
    try {
      value = await read();
      if (ok(value)) return value;
    } catch (error) {
      failure = error; // e.g. the database restarting: ask again
    }
    assert.ok(Date.now() < deadline, `${what}: not reached in ${timeoutMs} ms (last: ${failure === undefined ? JSON.stringify(value) : String(failure)})`);
    await sleep(intervalMs);
  }
}

/** Runs `task` over `items` with at most `concurrency` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  }));
  return results;
}

/** A real answer: anything but a network failure or a 503 (retry later). */
export function isSettled(outcome: Outcome): outcome is Outcome & { ok: true } {
  return outcome.ok && outcome.answer.status !== 503;
}

/**
 * Sends `items` again (at most `concurrency` at a time, pausing `pauseMs` between rounds) until
 * each has a real answer or `timeoutMs` has passed; returns the items with their last outcome.
 */
export async function resendUntilSettled<T extends { outcome: Outcome }>(items: readonly T[], resend: (item: T) => Promise<Outcome>, options: { concurrency: number; timeoutMs: number; pauseMs: number }): Promise<{ settled: T[]; unsettled: T[]; rounds: number }> {
  const deadline = Date.now() + options.timeoutMs;
  const settled: T[] = [];
  let pending = [...items];
  let rounds = 0;
  while (pending.length > 0 && Date.now() < deadline) {
    if (rounds > 0) await sleep(options.pauseMs);
    rounds += 1;
    const results = await mapLimit(pending, options.concurrency, async (item) => ({ ...item, outcome: await resend(item) }));
    settled.push(...results.filter((r) => isSettled(r.outcome)));
    pending = results.filter((r) => !isSettled(r.outcome));
  }
  return { settled, unsettled: pending, rounds };
}
