// Owns the opening of the `queue` scenario: students learn their place (their stream, or polling at
// a pace set by their estimate) and register with their admission once admitted, while bots hammer
// POST /register without one (or with a forged one); runs until no place waits or is admitted.
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import postgres from 'postgres';
import { ConnectionPool, type TimedAnswer } from './connection-pool.ts';
import { ThreadedConnectionPool } from './threaded-connection-pool.ts';
import type { EtaReading } from './queue-checks.ts';
import type { PlaceStream } from './place-stream.ts';
import { startProgress } from './progress.ts';
import { Http1Connection } from '../test/support/http1-connection.ts';
import { epochNow } from '../test/support/rush.ts';

/** A student who joined: their place, its token, and what they saw of it. */
export type QueueStudent = {
  index: number;
  name: string;
  email: string;
  placeId: string;
  token: string;
  stream: PlaceStream | undefined;
  status: string;
  admission: string | undefined;
  /** Seen 'waiting' again after being admitted (a place must not go back). */
  wentBack: boolean;
  done: boolean;
  /** Polling GET /queue/{id}: no stream, or its stream ended before the place was final. */
  polling: boolean;
};

/** Where the students' streams deliver their messages: set by the opening while it runs. */
export type PlaceListener = { current: ((student: QueueStudent, place: Record<string, unknown>, at: number) => void) | undefined };

/** One POST /register, of a student or a bot. */
export type RegisterRecord = TimedAnswer & { email: string; registrationId?: string; registrationStatus?: string; problemType?: string };

export type RushSample = { at: number; admitted: number; registered: number; botAnswers: number; polls: number; pollsWaiting: number };

export type QueueRushResult = {
  openedAt: number;
  endedAt: number;
  /** Every attempt of an admitted student, retries included. */
  registrations: RegisterRecord[];
  bots: RegisterRecord[];
  polls: TimedAnswer[];
  readings: EtaReading[];
  samples: RushSample[];
  timedOut: boolean;
  /** The bench's main event-loop delay through the opening (ms): what it adds to the latencies timed on it (not the students' registrations: their own thread). */
  benchLoopDelay: { p50: number; p99: number; max: number };
};

export type QueueRushSettings = {
  baseUrl: string;
  databaseUrl: string;
  course: string;
  students: QueueStudent[];
  listener: PlaceListener;
  openedAt: number;
  bots: number;
  /** Seats and waitlist places: the places that settle one by one. */
  places: number;
  pollConcurrency: number;
  registerConcurrency: number;
  pollMaxMs: number;
  firstPollSpreadMs: number;
  timeoutMs: number;
  requestTimeoutMs: number;
  signal: AbortSignal;
  log: (line: string) => void;
};

const FINAL = new Set(['registered', 'expired', 'sold-out', 'left', 'closed']);

/** A place in this status never changes again (its stream ends). */
export function isFinalStatus(status: string): boolean {
  return FINAL.has(status);
}
const REGISTER_ATTEMPTS = 5;
const REGISTER_RETRY_MS = 500;
const MONITOR_EVERY_MS = 1_000;

function readRegistration(record: RegisterRecord): RegisterRecord {
  if (record.status === 0 || record.body === '') return record;
  try {
    const body = JSON.parse(record.body) as { id?: unknown; status?: unknown; type?: unknown };
    if (typeof body.id === 'string') record.registrationId = body.id;
    if (typeof body.status === 'string') record.registrationStatus = body.status;
    if (typeof body.type === 'string') record.problemType = body.type;
  } catch {
    record.error = `not JSON: ${record.body.slice(0, 80)}`;
  }
  record.body = '';
  return record;
}

/** Polls per second a student near the head counts on: its position over this, in seconds, bounds its pause. */
const POSITIONS_PER_SECOND = 50;

/**
 * Next poll: a third of the estimate, and no later than its position over 50 per second (an
 * estimate made from a slow first minute would keep the head waiting on its own poll), between
 * 1 s and pollMaxMs, with 10% jitter.
 */
function pollDelayMs(place: { estimatedWaitSeconds?: unknown; position?: unknown }, pollMaxMs: number): number {
  const byEstimate = typeof place.estimatedWaitSeconds === 'number' ? (place.estimatedWaitSeconds * 1000) / 3 : Number.POSITIVE_INFINITY;
  const byPosition = typeof place.position === 'number' ? (place.position * 1000) / POSITIONS_PER_SECOND : 2_000 + Math.random() * 3_000;
  return Math.min(pollMaxMs, Math.max(1_000, Math.min(byEstimate, byPosition))) * (0.9 + Math.random() * 0.2);
}

export async function runQueueRush(settings: QueueRushSettings): Promise<QueueRushResult> {
  const { baseUrl, course, students, signal } = settings;
  const polls = new ConnectionPool(baseUrl, settings.pollConcurrency, settings.requestTimeoutMs);
  // The students' registrations are timed on a thread of their own (the bench's main loop holds the streams, bots and polls).
  const registering = new ThreadedConnectionPool(baseUrl, settings.registerConcurrency, settings.requestTimeoutMs);
  const result: QueueRushResult = { openedAt: settings.openedAt, endedAt: 0, registrations: [], bots: [], polls: [], readings: [], samples: [], timedOut: false, benchLoopDelay: { p50: 0, p99: 0, max: 0 } };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let inFlight = 0;
  let registrationsDone = 0;

  const later = (ms: number, action: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      action();
    }, ms);
    timers.add(timer);
  };

  const register = async (student: QueueStudent) => {
    inFlight += 1;
    try {
      const body = JSON.stringify({ name: student.name, email: student.email, course, admission: student.admission });
      for (let attempt = 1; attempt <= REGISTER_ATTEMPTS && !signal.aborted; attempt++) {
        const record = readRegistration({ ...(await registering.send('POST', '/register', { body })), email: student.email });
        result.registrations.push(record);
        if (record.status !== 0 && record.status !== 503) break;
        await new Promise((resolve) => setTimeout(resolve, REGISTER_RETRY_MS));
      }
    } finally {
      inFlight -= 1;
      registrationsDone += 1;
    }
  };

  const onPlace = (student: QueueStudent, place: Record<string, unknown>, at: number) => {
    const status = String(place.status);
    if (status === 'waiting' && student.admission !== undefined) student.wentBack = true;
    if (status === 'waiting' && typeof place.estimatedWaitSeconds === 'number' && at >= settings.openedAt) {
      result.readings.push({ placeId: student.placeId, at, estimatedSeconds: place.estimatedWaitSeconds });
    }
    student.status = status;
    if (status === 'admitted' && typeof place.admission === 'string' && student.admission === undefined) {
      student.admission = place.admission;
      void register(student);
    }
    if (FINAL.has(status)) student.done = true;
  };

  const poll = async (student: QueueStudent) => {
    if (stopped || student.done || student.admission !== undefined) return;
    const answer = await polls.send('GET', `/queue/${student.placeId}`, { token: student.token });
    result.polls.push({ ...answer, body: '' });
    let place: Record<string, unknown> = {};
    if (answer.status === 200) {
      place = JSON.parse(answer.body) as Record<string, unknown>;
      onPlace(student, place, answer.endedAt);
    }
    if (!stopped && !student.done && student.admission === undefined) later(pollDelayMs(place, settings.pollMaxMs), () => void poll(student));
  };

  const startPolling = (student: QueueStudent, withinMs: number) => {
    student.polling = true;
    later(Math.random() * withinMs, () => void poll(student));
  };
  // Streams hand their messages over from now on; a stream that ends before its place is final
  // (a dropped connection) leaves its student polling (the monitor below looks each second).
  settings.listener.current = onPlace;
  for (const student of students) {
    if (student.stream?.state !== 'open' && !student.done) startPolling(student, settings.firstPollSpreadMs);
  }
  const streamed = students.filter((s) => s.stream !== undefined);

  const forged = () => randomBytes(32).toString('base64url');
  const botLoop = async (bot: number) => {
    const connection = new Http1Connection(baseUrl, settings.requestTimeoutMs);
    try {
      for (let n = 0; !stopped; n++) {
        const kind = (bot + n) % 3;
        const student = students[Math.floor(Math.random() * students.length)]!;
        const email = kind === 0 ? `bot${bot}-${n}@bots.example.org` : student.email;
        const body = JSON.stringify({ name: `Bot ${bot}`, email, course, ...(kind === 2 ? { admission: forged() } : {}) });
        const startedAt = epochNow();
        let record: RegisterRecord;
        try {
          const answer = await connection.post('/register', body);
          record = { startedAt, endedAt: epochNow(), status: answer.status, body: answer.body, email };
        } catch (error) {
          record = { startedAt, endedAt: epochNow(), status: 0, body: '', email, error: error instanceof Error ? error.message : String(error) };
        }
        if (!stopped) result.bots.push(readRegistration(record));
      }
    } finally {
      connection.close();
    }
  };
  const bots = Array.from({ length: settings.bots }, (_, bot) => botLoop(bot));

  const sql = postgres(settings.databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10, idle_timeout: 5 });
  // The places beyond the seats and waitlist places are sold out at once when those run out: the
  // progress counts toward the ones that settle one by one, so its time left means something.
  const settling = Math.min(students.length, settings.places);
  const progress = startProgress('queue: opening', settling, { unit: 'places settled (the rest are sold out at once)' });
  try {
    const deadline = settings.openedAt + settings.timeoutMs;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, MONITOR_EVERY_MS));
      if (signal.aborted) throw new Error('interrupted');
      const [state] = await sql<{ admitted: string; waiting: string; settled: string }[]>`
        SELECT s.admitted_total::text AS admitted,
          (SELECT count(*) FROM queue_places q WHERE q.course_id = s.course_id AND q.status IN ('waiting', 'admitted', 'unverified'))::text AS waiting,
          (SELECT count(*) FROM queue_places q WHERE q.course_id = s.course_id AND q.status NOT IN ('waiting', 'admitted', 'unverified'))::text AS settled
        FROM queue_states s WHERE s.course_id = ${course}`;
      for (const student of streamed) {
        if (!student.done && !student.polling && student.admission === undefined && student.stream!.state !== 'open') startPolling(student, 0);
      }
      const now = epochNow();
      result.samples.push({ at: now, admitted: Number(state?.admitted ?? 0), registered: registrationsDone, botAnswers: result.bots.length, polls: result.polls.length, pollsWaiting: polls.waiting });
      progress.update(Math.min(settling, Number(state?.settled ?? 0)));
      if (Number(state?.waiting ?? 1) === 0 && inFlight === 0) break;
      if (now > deadline) {
        result.timedOut = true;
        settings.log(`queue: the opening did not settle within ${settings.timeoutMs} ms (${state?.waiting} places still waiting or admitted)`);
        break;
      }
    }
  } finally {
    progress.finish(result.timedOut ? 'timed out' : undefined);
    loopDelay.disable();
    result.benchLoopDelay = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
    stopped = true;
    settings.listener.current = undefined;
    result.endedAt = epochNow();
    for (const timer of timers) clearTimeout(timer);
    await Promise.all(bots);
    polls.close();
    await registering.close();
    await sql.end({ timeout: 5 });
  }
  return result;
}
