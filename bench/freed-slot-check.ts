// Owns the freed-slot check of a full course: after an admin change frees a place (a cancel, or a
// capacity raised by one), new students try every few ms, each on a new connection, until one is
// answered 201; the delay from the change's answer to that 201 must stay within the service's
// full-course recheck bound plus a margin. Every attempt is kept for the invariant check.
import { setTimeout as sleep } from 'node:timers/promises';
import { FULL_COURSE_RECHECK_MS } from '../src/domain/full-courses.ts';
import { cancelRegistration, changeCourseCapacity } from './admin-api.ts';
import { Http1Connection } from '../test/support/http1-connection.ts';
import { type AnswerRecord, epochNow, sendRegistration, type StudentRequest } from '../test/support/rush.ts';

/** Scheduling slack on a busy 2-core machine, on top of the service's own bound (--freed-slot-margin-ms). */
export const DEFAULT_FREED_SLOT_MARGIN_MS = 250;
/** One attempt this often, whether the previous one is answered or not. */
export const ATTEMPT_INTERVAL_MS = 10;
/** A place still not offered after this long is reported as never offered. */
const GIVE_UP_MS = 10_000;
/** Attempts before each change, so that every worker has just been told the course is full. */
const PRIMING_ATTEMPTS_PER_WORKER = 8;
const ATTEMPT_TIMEOUT_MS = 30_000;

/** The order of the trials: three cancels and two capacity raises, alternating. */
const TRIALS = ['cancel', 'raise capacity', 'cancel', 'raise capacity', 'cancel'] as const;

export type FreedSlotTrial = {
  change: string;
  /** ms from the change's answer to the first 201; NaN when none came within GIVE_UP_MS. */
  delayMs: number;
  attempts: number;
  /** Attempts answered 409 course-full before the 201 arrived. */
  refusedBefore: number;
  /** The priming attempts' answers, e.g. "16x409". */
  primed: string;
};

export type FreedSlotCheck = {
  /** FULL_COURSE_RECHECK_MS + marginMs: a later offer is a violation. */
  boundMs: number;
  marginMs: number;
  trials: FreedSlotTrial[];
  /** Every POST /register sent by the check (priming and attempts), for the invariant check. */
  answers: AnswerRecord[];
  violations: string[];
};

export type FreedSlotOptions = {
  baseUrl: string;
  adminToken: string;
  course: string;
  capacity: number;
  workers: number;
  marginMs: number;
  /** The rush's answers: its 201s on `course` are the registrations the cancels may take. */
  rushAnswers: readonly AnswerRecord[];
  signal: AbortSignal;
  log: (line: string) => void;
};

/** A new connection per attempt, which the kernel hands to any HTTP worker (SO_REUSEPORT). */
async function attemptOnNewConnection(baseUrl: string, request: StudentRequest, index: number, signal: AbortSignal): Promise<AnswerRecord> {
  const connection = new Http1Connection(baseUrl, ATTEMPT_TIMEOUT_MS);
  const close = () => connection.close();
  signal.addEventListener('abort', close, { once: true });
  try {
    return await sendRegistration(connection, request, index);
  } finally {
    signal.removeEventListener('abort', close);
    connection.close();
  }
}

function describeStatuses(records: readonly AnswerRecord[]): string {
  const counts = new Map<number, number>();
  for (const r of records) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a - b).map(([status, n]) => `${n}x${status === 0 ? 'error' : status}`).join(' ');
}

export async function checkFreedSlots(options: FreedSlotOptions): Promise<FreedSlotCheck> {
  const answers: AnswerRecord[] = [];
  const trials: FreedSlotTrial[] = [];
  const violations: string[] = [];
  const boundMs = FULL_COURSE_RECHECK_MS + options.marginMs;
  const cancelled = new Set<string>();
  let capacity = options.capacity;
  let students = 0;
  const nextStudent = (trial: number): StudentRequest => {
    students += 1;
    return { name: `Freed-slot ${students}`, email: `freed${students}-t${trial}@freed-slot.example.org`, course: options.course };
  };
  const send = async (request: StudentRequest) => {
    const record = await attemptOnNewConnection(options.baseUrl, request, students, options.signal);
    answers.push(record);
    return record;
  };

  for (const [i, kind] of TRIALS.entries()) {
    const trial = i + 1;
    options.signal.throwIfAborted();
    const priming = await Promise.all(Array.from({ length: PRIMING_ATTEMPTS_PER_WORKER * options.workers }, () => send(nextStudent(trial))));

    let change: string;
    if (kind === 'cancel') {
      // Any place-holder of the course will do: from the rush, or a previous trial's winner.
      const holder = [...options.rushAnswers, ...answers].find((a) => a.status === 201 && a.request.course === options.course && a.registrationId !== undefined && !cancelled.has(a.registrationId));
      if (!holder?.registrationId) {
        violations.push(`trial ${trial}: no registration of ${options.course} left to cancel`);
        continue;
      }
      cancelled.add(holder.registrationId);
      await cancelRegistration(options.baseUrl, options.adminToken, holder.registrationId);
      change = `cancel ${holder.registrationId.slice(0, 8)}`;
    } else {
      await changeCourseCapacity(options.baseUrl, options.adminToken, options.course, capacity + 1);
      change = `capacity ${capacity} -> ${capacity + 1}`;
      capacity += 1;
    }
    const changedAt = epochNow();

    const attempts: Promise<AnswerRecord>[] = [];
    let winner: AnswerRecord | undefined;
    // Bounded: one attempt per interval until a 201 or GIVE_UP_MS.
    while (!winner && epochNow() - changedAt < GIVE_UP_MS && !options.signal.aborted) {
      attempts.push(send(nextStudent(trial)).then((record) => {
        if (record.status === 201 && (!winner || record.endedAt < winner.endedAt)) winner = record;
        return record;
      }));
      await sleep(ATTEMPT_INTERVAL_MS);
    }
    const records = await Promise.all(attempts);
    options.signal.throwIfAborted();
    const delayMs = winner ? winner.endedAt - changedAt : Number.NaN;
    const refusedBefore = records.filter((r) => r.status === 409 && (!winner || r.endedAt < winner.endedAt)).length;
    trials.push({ change, delayMs, attempts: records.length, refusedBefore, primed: describeStatuses(priming) });
    options.log(`freed slot, trial ${trial} (${change}): ${winner ? `201 after ${Math.round(delayMs)} ms` : 'no 201'}, ${records.length} attempts`);

    if (!winner) violations.push(`trial ${trial} (${change}): no attempt answered 201 within ${GIVE_UP_MS} ms (${describeStatuses(records)})`);
    else if (delayMs > boundMs) {
      violations.push(`trial ${trial} (${change}): the freed place was offered after ${Math.round(delayMs)} ms, over the bound of ${boundMs} ms (FULL_COURSE_RECHECK_MS ${FULL_COURSE_RECHECK_MS} + ${options.marginMs} ms margin)`);
    }
  }
  return { boundMs, marginMs: options.marginMs, trials, answers, violations };
}
