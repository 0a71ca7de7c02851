// The load generator of the tests and the bench: many requests against a running service, each
// with a deadline, run as a closed loop (runClosedLoop), and what came back for each.
//
// Two clients, for a measured reason. The bench's registerAll and sendRegistration speak through
// Http1Connection (http1-connection.ts): the bench shares the two cores it measures, and undici
// costs 41-49 us of CPU per request where that connection costs about 16 (docs/benchmarks.md); it
// reads a status and a JSON body, nothing else. The tests' `send` goes through fetch on an undici
// dispatcher the test tunes: it must show what a real client sees (headers such as Retry-After,
// any method and body) and tell a reset from a refusal from a deadline (failureReason).
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import type { Answer } from './http.ts';
import { Http1Connection } from './http1-connection.ts';
import type { ObservedAnswer } from './invariants.ts';

/** The service's own requestTimeout: no answer may take longer (plus a little for the client). */
export const REQUEST_DEADLINE_MS = 30_000;

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Told of each finished step, then of the end: the bench's progress line (bench/progress.ts). */
export type LoopProgress = { update(done: number): void; finish(note?: string): void };

export function laneCount(count: number, concurrency: number): number {
  return Math.max(1, Math.min(concurrency, count));
}

/**
 * Runs step(0..count-1), `concurrency` at a time: each lane takes the next index once its step is
 * done (a closed loop); `lane` (0..lanes-1) lets a step keep one connection per lane. Results in
 * index order; no step starts once `signal` aborts (the results then have holes).
 */
export async function runClosedLoop<R>(count: number, concurrency: number, step: (index: number, lane: number) => Promise<R>, options: { signal?: AbortSignal | undefined; progress?: LoopProgress | undefined } = {}): Promise<R[]> {
  const { signal, progress } = options;
  const results = new Array<R>(count);
  let next = 0;
  let done = 0;
  const runLane = async (lane: number) => {
    while (next < count && !signal?.aborted) {
      const index = next++;
      results[index] = await step(index, lane);
      progress?.update(++done);
    }
  };
  try {
    await Promise.all(Array.from({ length: laneCount(count, concurrency) }, (_, lane) => runLane(lane)));
  } finally {
    progress?.finish(signal?.aborted ? 'interrupted' : undefined);
  }
  return results;
}

// ---- The bench's client: POST /register over lean keep-alive connections.

/** One student's request; with `courses`, for all of them at once (all or nothing), `course` their first. */
export type StudentRequest = { name: string; email: string; course: string; courses?: readonly string[] };

export type AnswerRecord = {
  index: number;
  request: StudentRequest;
  /** Epoch milliseconds (sub-millisecond precision), comparable with Date.now(). */
  startedAt: number;
  endedAt: number;
  /** HTTP status; 0 when no answer came (network error or timeout). */
  status: number;
  registrationId?: string;
  registrationStatus?: string;
  /** A request for several courses: the 201's registrations in the request's order. */
  registrationIds?: string[];
  problemType?: string;
  /** The course a refused request for several courses names. */
  refusedCourse?: string;
  error?: string;
};

export type LoadOptions = {
  baseUrl: string;
  requests: readonly StudentRequest[];
  /** Requests in flight, each on a keep-alive connection of its own. */
  concurrency: number;
  /** Per request: for the answer's headers and for its body. */
  timeoutMs: number;
  signal?: AbortSignal;
  progress?: LoopProgress;
};

function readAnswer(record: AnswerRecord, text: string): void {
  try {
    const body = JSON.parse(text) as { id?: unknown; status?: unknown; type?: unknown; registrations?: { id: string; status: string }[]; course?: unknown };
    if (typeof body.id === 'string') record.registrationId = body.id;
    if (typeof body.status === 'string') record.registrationStatus = body.status;
    if (typeof body.type === 'string') record.problemType = body.type;
    if (typeof body.course === 'string' && record.request.courses) record.refusedCourse = body.course;
    if (Array.isArray(body.registrations)) {
      record.registrationIds = body.registrations.map((r) => r.id);
      record.registrationStatus = body.registrations[0]?.status;
    }
  } catch {
    record.error = `not JSON: ${text.slice(0, 80)}`;
  }
}

/**
 * One POST /register over `connection`; never throws: a network error, a timeout or an answer
 * the connection cannot read is recorded as status 0 with its error.
 */
export async function sendRegistration(connection: Http1Connection, request: StudentRequest, index: number): Promise<AnswerRecord> {
  const record: AnswerRecord = { index, request, startedAt: epochNow(), endedAt: 0, status: 0 };
  try {
    const { name, email, course, courses } = request;
    const answer = await connection.post('/register', JSON.stringify(courses ? { name, email, courses } : { name, email, course }));
    record.status = answer.status;
    readAnswer(record, answer.body);
  } catch (error) {
    record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
  record.endedAt = epochNow();
  return record;
}

/** Every request of `options`, one connection per lane; throws 'interrupted' once `signal` aborts. */
export async function registerAll(options: LoadOptions): Promise<AnswerRecord[]> {
  const { requests, signal } = options;
  signal?.throwIfAborted();
  const connections = Array.from({ length: laneCount(requests.length, options.concurrency) }, () => new Http1Connection(options.baseUrl, options.timeoutMs));
  const closeAll = () => connections.forEach((connection) => connection.close());
  signal?.addEventListener('abort', closeAll, { once: true });
  try {
    const records = await runClosedLoop(requests.length, connections.length,
      (index, lane) => sendRegistration(connections[lane]!, requests[index]!, index),
      { signal, progress: options.progress });
    if (signal?.aborted) throw new Error('interrupted');
    return records;
  } finally {
    signal?.removeEventListener('abort', closeAll);
    closeAll();
  }
}

/**
 * The answers as the invariant check sees them: course, normalized email, status, id. A request
 * for several courses is an answer per course: its 201 names each course's registration; a
 * refusal's problem is the course's it names, the others are refused with it (all or nothing).
 */
export function observedAnswers(records: readonly Pick<AnswerRecord, 'request' | 'status' | 'registrationId' | 'registrationIds' | 'problemType' | 'refusedCourse'>[]): ObservedAnswer[] {
  return records.flatMap((r) => (r.request.courses ?? [r.request.course]).map((course, i) => {
    const registrationId = r.request.courses ? r.registrationIds?.[i] : r.registrationId;
    const problemType = r.request.courses && r.refusedCourse !== course ? undefined : r.problemType;
    return {
      course,
      emailKey: r.request.email.trim().toLowerCase(),
      status: r.status,
      ...(registrationId !== undefined ? { registrationId } : {}),
      ...(problemType !== undefined ? { problemType } : {}),
    };
  }));
}

// ---- The tests' client: any request through fetch, and what a failure was.

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
    const round = pending;
    const results = await runClosedLoop(round.length, options.concurrency, async (index) => ({ ...round[index]!, outcome: await resend(round[index]!) }));
    settled.push(...results.filter((r) => isSettled(r.outcome)));
    pending = results.filter((r) => !isSettled(r.outcome));
  }
  return { settled, unsettled: pending, rounds };
}
