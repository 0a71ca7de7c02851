// Owns the load: POST /register for a list of students over C keep-alive connections, one request
// in flight on each (a closed loop), recording per request when it was sent and answered, its
// status and its id, over the bench's lean HTTP/1.1 connections (http1-connection.ts).
import { performance } from 'node:perf_hooks';
import { Http1Connection } from '../test/support/http1-connection.ts';
import type { ObservedAnswer } from '../test/support/invariants.ts';
import { startProgress } from './progress.ts';

export type StudentRequest = { name: string; email: string; course: string };

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
  problemType?: string;
  error?: string;
};

export type LoadOptions = {
  baseUrl: string;
  requests: readonly StudentRequest[];
  concurrency: number;
  /** Per request: for the answer's headers and for its body. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** A progress line on stderr under this label (answers so far of the total). */
  progress?: string;
};

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

function readAnswer(record: AnswerRecord, text: string): void {
  try {
    const body = JSON.parse(text) as { id?: unknown; status?: unknown; type?: unknown };
    if (typeof body.id === 'string') record.registrationId = body.id;
    if (typeof body.status === 'string') record.registrationStatus = body.status;
    if (typeof body.type === 'string') record.problemType = body.type;
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
    const answer = await connection.post('/register', JSON.stringify(request));
    record.status = answer.status;
    readAnswer(record, answer.body);
  } catch (error) {
    record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
  record.endedAt = epochNow();
  return record;
}

/**
 * Runs step(0..count-1), `concurrency` at a time: each caller takes the next index once its step
 * is done (a closed loop). Bounded by `count`; no new step starts once `signal` aborts.
 */
export async function runClosedLoop(count: number, concurrency: number, step: (index: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < count && !signal?.aborted) await step(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, loop));
}

export async function registerAll(options: LoadOptions): Promise<AnswerRecord[]> {
  options.signal?.throwIfAborted();
  const concurrency = Math.max(1, Math.min(options.concurrency, options.requests.length || 1));
  const connections = Array.from({ length: concurrency }, () => new Http1Connection(options.baseUrl, options.timeoutMs));
  const closeAll = () => connections.forEach((connection) => connection.close());
  options.signal?.addEventListener('abort', closeAll, { once: true });
  const records: AnswerRecord[] = new Array(options.requests.length);
  const progress = options.progress === undefined ? undefined : startProgress(options.progress, options.requests.length, { unit: 'answers' });
  let answered = 0;
  let next = 0;
  const loop = async (connection: Http1Connection) => {
    while (next < options.requests.length && !options.signal?.aborted) {
      const index = next++;
      records[index] = await sendRegistration(connection, options.requests[index]!, index);
      progress?.update(++answered);
    }
  };
  try {
    await Promise.all(connections.map(loop));
  } finally {
    options.signal?.removeEventListener('abort', closeAll);
    closeAll();
    progress?.finish(options.signal?.aborted ? 'interrupted' : undefined);
  }
  if (options.signal?.aborted) throw new Error('interrupted');
  return records;
}

/** The answers as the invariant check sees them: course, normalized email, status, id. */
export function observedAnswers(records: readonly Pick<AnswerRecord, 'request' | 'status' | 'registrationId' | 'problemType'>[]): ObservedAnswer[] {
  return records.map((r) => ({
    course: r.request.course,
    emailKey: r.request.email.trim().toLowerCase(),
    status: r.status,
    ...(r.registrationId !== undefined ? { registrationId: r.registrationId } : {}),
    ...(r.problemType !== undefined ? { problemType: r.problemType } : {}),
  }));
}
