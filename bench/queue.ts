// Owns the `queue` scenario: the rush through the waiting room. N students join a queued course before
// it opens, S of them hold a position stream, GET /queue/{id} is read in a burst, then the course
// opens: students register with their admissions while bots hammer POST /register without one.
// Checks admissions in queue order, the random order from its seed, the estimates and every invariant.
import postgres from 'postgres';
import { changeCourseOpensAt, createQueuedCourse, readCourse } from './admin-api.ts';
import { ConnectionPool, spanOf, type TimedAnswer } from './connection-pool.ts';
import { startCpuStopwatch, type CpuWindow } from './cpu-window.ts';
import { UsageError } from './flags.ts';
import { PlaceStream } from './place-stream.ts';
import { sampleMemory } from './process-memory.ts';
import { startProgress } from './progress.ts';
import { formatMs, summarize } from './stats.ts';
import type { PlaceFacts } from './queue-checks.ts';
import { renderQueueReport } from './queue-report.ts';
import { isFinalStatus, type PlaceListener, type QueueRushResult, type QueueStudent, runQueueRush } from './queue-rush.ts';
import { defineScenario, type ScenarioContext } from './scenario.ts';
import { emailDelayFlag, serviceFlags } from './service-flags.ts';
import { type RunEnvironment, withServiceRun } from './service-run.ts';
import { type InvariantSnapshot, readInvariantSnapshot } from '../test/support/invariants.ts';
import { runClosedLoop } from '../test/support/rush.ts';
import { runOpenLoop } from './open-loop.ts';

export const QUEUED_COURSE = 'queued';

const queueFlags = {
  students: { type: 'integer', description: 'students who join the queue before it opens', default: 100_000, min: 1, max: 1_000_000 },
  concurrency: { type: 'integer', description: 'connections the joins go over (lean keep-alive), at most that many in flight', default: 256, min: 1, max: 4_096 },
  'join-rate': { type: 'integer', description: 'joins arriving per second whatever the answers do (an open loop over at most --concurrency connections, latency from when each was due); 0: a closed loop of --concurrency', default: 0, min: 0, max: 100_000 },
  arrival: { type: 'boolean', description: 'order the queue by arrival (default: random, checked from its seed)' },
  seats: { type: 'integer', description: 'seats of the queued course', default: 10_000, min: 1, max: 1_000_000 },
  waitlist: { type: 'integer', description: 'waitlist places of the queued course', default: 2_000, min: 0, max: 1_000_000 },
  'admission-seconds': { type: 'integer', description: 'how long an admitted student may take to register', default: 300, min: 1, max: 86_400 },
  streams: { type: 'integer', description: 'position streams (GET /queue/{id}/events) held from before opening to the end (0: none)', default: 10_000, min: 0, max: 18_000 },
  'stream-concurrency': { type: 'integer', description: 'streams being opened at once', default: 200, min: 1, max: 2_000 },
  'read-seconds': { type: 'integer', description: 'length of the GET /queue/{id} burst before opening (0: none)', default: 10, min: 0, max: 600 },
  'read-concurrency': { type: 'integer', description: 'GET /queue/{id} in flight during the burst', default: 256, min: 1, max: 4_096 },
  bots: { type: 'integer', description: 'bot clients hammering POST /register without (or with a forged) admission during the opening', default: 1_000, min: 0, max: 4_000 },
  'poll-concurrency': { type: 'integer', description: 'connections the polling students share (as many as the bots: the service shares itself out by connection)', default: 1_000, min: 1, max: 4_096 },
  'register-concurrency': { type: 'integer', description: 'connections the admitted students register over', default: 128, min: 1, max: 4_096 },
  'poll-max-ms': { type: 'integer', description: 'longest pause of a polling student (each polls again after a third of its estimate or its position over 50/s, at least 1 s)', default: 120_000, min: 1_000, max: 600_000 },
  'first-poll-spread-ms': { type: 'integer', description: 'the students without a stream poll first at a random moment this long after opening', default: 30_000, min: 0, max: 600_000 },
  'opening-timeout-ms': { type: 'integer', description: 'longest the opening may take before the run fails', default: 900_000, min: 10_000, max: 7_200_000 },
  'timeout-ms': { type: 'integer', description: 'per request: longer counts as an error', default: 30_000, min: 100, max: 600_000 },
  'email-delay-ms': emailDelayFlag(0),
  ...serviceFlags,
} as const;

export type QueueSettings = {
  students: number;
  concurrency: number;
  /** Joins per second in an open loop; 0: a closed loop of `concurrency`. */
  joinRate: number;
  order: 'random' | 'arrival';
  seats: number;
  waitlist: number;
  admissionSeconds: number;
  streams: number;
  streamConcurrency: number;
  readSeconds: number;
  readConcurrency: number;
  bots: number;
  workers: number;
};

/** HTTP workers' resident memory with this many streams open. */
export type StreamMemory = { streams: number; httpBytes: number };

export type StreamPhase = {
  opened: number;
  failed: number;
  /** The route answered something else than a stream (e.g. 404: not built): the rest were not tried. */
  unavailable: string | undefined;
  failures: string[];
  memory: StreamMemory[];
  durationMs: number;
  /** At the end of the run: held until the place was final (the server ended it), still open, dropped. */
  endedByServer: number;
  stillOpen: number;
  dropped: number;
  /** Why the dropped ones ended, with their place's last status seen: count. */
  dropReasons: Record<string, number>;
  messages: number;
};

export type QueueResult = {
  course: string;
  settings: QueueSettings;
  joins: TimedAnswer[];
  joinCpu: CpuWindow;
  streams: StreamPhase;
  reads: { answers: TimedAnswer[]; durationMs: number; cpu: CpuWindow } | undefined;
  rush: QueueRushResult;
  rushCpu: CpuWindow;
  students: QueueStudent[];
  places: PlaceFacts[];
  snapshot: Pick<InvariantSnapshot, 'courses' | 'registrations' | 'queues'>;
  seed: { commitment: string | null; revealed: string | null };
};

/** A phase's figures as a log line, so that a run stopped later still tells them. */
function phaseLine(answers: readonly TimedAnswer[], spanMs?: number): string {
  const latency = summarize(answers.filter((a) => a.status !== 0).map((a) => a.endedAt - a.startedAt));
  const span = spanMs ?? spanOf(answers);
  return `${answers.length} answers in ${formatMs(span)}: ${Math.round((answers.length * 1000) / span)}/s, p50 ${formatMs(latency.p50)}, p99 ${formatMs(latency.p99)}`;
}

function joinBody(index: number): string {
  return JSON.stringify({ name: `Student ${index + 1}`, email: `student${index + 1}@queue.example.org` });
}

async function joinAll(run: RunEnvironment, settings: QueueSettings, timeoutMs: number): Promise<{ joins: TimedAnswer[]; students: QueueStudent[] }> {
  const pool = new ConnectionPool(run.service.baseUrl, settings.concurrency, timeoutMs);
  const progress = startProgress('queue: joins', settings.students, { unit: 'answers' });
  let done = 0;
  try {
    const join = (i: number) => pool.send('POST', `/courses/${QUEUED_COURSE}/queue`, { body: joinBody(i) });
    const joins = settings.joinRate > 0
      ? await runOpenLoop(settings.students, settings.joinRate, join, () => progress.update(++done))
      : await Promise.all(Array.from({ length: settings.students }, (_, i) => join(i).then((answer) => {
        progress.update(++done);
        return answer;
      })));
    const students: QueueStudent[] = [];
    joins.forEach((answer, index) => {
      if (answer.status !== 201) return;
      const body = JSON.parse(answer.body) as { id: string; queueToken: string; status: string };
      students.push({ index, name: `Student ${index + 1}`, email: `student${index + 1}@queue.example.org`, placeId: body.id, token: body.queueToken, stream: undefined, status: body.status, admission: undefined, wentBack: false, done: false, polling: false });
      answer.body = '';
    });
    return { joins, students };
  } finally {
    progress.finish();
    pool.close();
  }
}

const STREAM_BATCH = 1_000;
const NO_STREAMS: StreamPhase = { opened: 0, failed: 0, unavailable: undefined, failures: [], memory: [], durationMs: 0, endedByServer: 0, stillOpen: 0, dropped: 0, dropReasons: {}, messages: 0 };

/** Opens `count` streams, spread over the students, 1,000 at a time; memory after each thousand. */
async function openStreams(run: RunEnvironment, students: QueueStudent[], count: number, concurrency: number, listener: PlaceListener, timeoutMs: number, log: (line: string) => void): Promise<StreamPhase> {
  const phase: StreamPhase = { ...NO_STREAMS, failures: [], memory: [], dropReasons: {} };
  const step = students.length / Math.min(count, students.length);
  const chosen = Array.from({ length: Math.min(count, students.length) }, (_, i) => students[Math.floor(i * step)]!);
  const started = Date.now();
  phase.memory.push({ streams: 0, httpBytes: (await sampleMemory(run.service.pid)).byRole.http });
  const progress = startProgress('queue: streams', chosen.length, { unit: 'streams' });
  try {
    for (let from = 0; from < chosen.length && phase.unavailable === undefined; from += STREAM_BATCH) {
      const batch = chosen.slice(from, from + STREAM_BATCH);
      await runClosedLoop(batch.length, concurrency, async (i) => {
        if (phase.unavailable !== undefined) return;
        const student = batch[i]!;
        let first: () => void = () => {};
        const firstMessage = new Promise<void>((resolve) => (first = resolve));
        const stream = new PlaceStream(run.service.baseUrl, student.placeId, student.token, (place, at) => {
          first();
          student.status = String(place.status);
          listener.current?.(student, place, at);
        });
        try {
          await stream.open(timeoutMs);
          await Promise.race([firstMessage, new Promise((_, reject) => setTimeout(() => reject(new Error(`no first message within ${timeoutMs} ms`)), timeoutMs).unref())]);
          student.stream = stream;
          phase.opened += 1;
        } catch (error) {
          stream.close();
          phase.failed += 1;
          const reason = stream.failure ?? (error instanceof Error ? error.message : String(error));
          if (phase.failures.length < 5) phase.failures.push(reason);
          if (phase.opened === 0 && /^http\/1\.1 (404|405)/.test(reason)) phase.unavailable = reason;
        }
        progress.update(phase.opened + phase.failed);
      });
      phase.memory.push({ streams: phase.opened, httpBytes: (await sampleMemory(run.service.pid)).byRole.http });
    }
  } finally {
    progress.finish(phase.unavailable ? `not available: ${phase.unavailable}` : undefined);
  }
  if (phase.unavailable) log(`queue: GET /queue/{id}/events answered "${phase.unavailable}": the run goes on without streams`);
  phase.durationMs = Date.now() - started;
  return phase;
}

/** GET /queue/{id} of random places, `concurrency` at a time, for `seconds`. */
async function readBurst(run: RunEnvironment, students: QueueStudent[], seconds: number, concurrency: number, timeoutMs: number): Promise<{ answers: TimedAnswer[]; durationMs: number; cpu: CpuWindow }> {
  const pool = new ConnectionPool(run.service.baseUrl, concurrency, timeoutMs);
  const answers: TimedAnswer[] = [];
  const watch = await startCpuStopwatch(run.cpuRoots);
  const started = Date.now();
  const deadline = started + seconds * 1000;
  const progress = startProgress('queue: reads', seconds, { unit: 's' });
  const ticker = setInterval(() => progress.update(Math.min(seconds, Math.floor((Date.now() - started) / 1000))), 1_000);
  try {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        const student = students[Math.floor(Math.random() * students.length)]!;
        const answer = await pool.send('GET', `/queue/${student.placeId}`, { token: student.token });
        answer.body = '';
        answers.push(answer);
      }
    }));
  } finally {
    clearInterval(ticker);
    progress.finish();
    pool.close();
  }
  return { answers, durationMs: Date.now() - started, cpu: await watch.read() };
}

async function readPlaces(databaseUrl: string): Promise<{ places: PlaceFacts[]; snapshot: QueueResult['snapshot'] }> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10, idle_timeout: 5 });
  try {
    return await sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
      const rows = await tx<{ id: string; email_key: string; rank: string | null; status: string; admitted_ms: number | null; registration_id: string | null; join_seq: string }[]>`
        SELECT id, email_key, rank::text, status::text, (extract(epoch FROM admitted_at) * 1000)::float8 AS admitted_ms, registration_id, join_seq::text
        FROM queue_places WHERE course_id = ${QUEUED_COURSE}`;
      const places = rows.map((r) => ({ id: r.id, emailKey: r.email_key, rank: r.rank === null ? null : Number(r.rank), status: r.status, admittedAt: r.admitted_ms, registrationId: r.registration_id, joinSeq: Number(r.join_seq) }));
      return { places, snapshot: await readInvariantSnapshot(tx) };
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function queueOnService(run: RunEnvironment, settings: QueueSettings, flags: { timeoutMs: number; rush: Omit<Parameters<typeof runQueueRush>[0], 'baseUrl' | 'databaseUrl' | 'course' | 'students' | 'listener' | 'openedAt' | 'signal' | 'log' | 'requestTimeoutMs' | 'bots' | 'places'> }, context: ScenarioContext): Promise<QueueResult> {
  const { baseUrl, adminToken } = run.service;
  // Opens once everything before the opening is done (changeCourseOpensAt below).
  await createQueuedCourse(baseUrl, adminToken, { id: QUEUED_COURSE, title: 'Queued course', capacity: settings.seats, waitlistCapacity: settings.waitlist }, new Date(Date.now() + 86_400_000), { order: settings.order, admissionSeconds: settings.admissionSeconds });
  const commitment = (await readCourse(baseUrl, adminToken, QUEUED_COURSE)).queue?.seedSha256 ?? null;

  context.log(settings.joinRate > 0
    ? `queue: ${settings.students} students join, ${settings.joinRate} arriving a second over at most ${settings.concurrency} connections`
    : `queue: ${settings.students} students join at concurrency ${settings.concurrency}`);
  const joinWatch = await startCpuStopwatch(run.cpuRoots);
  const { joins, students } = await joinAll(run, settings, flags.timeoutMs);
  const joinCpu = await joinWatch.read();
  context.log(`queue: joins: ${phaseLine(joins)}`);
  context.signal.throwIfAborted();

  const listener: PlaceListener = { current: undefined };
  const streams = settings.streams === 0 || students.length === 0
    ? { ...NO_STREAMS, failures: [], memory: [], dropReasons: {} }
    : await openStreams(run, students, settings.streams, settings.streamConcurrency, listener, flags.timeoutMs, context.log);
  if (streams.memory.length > 1) {
    const last = streams.memory.at(-1)!;
    context.log(`queue: streams: ${streams.opened} open, ${streams.failed} failed; HTTP workers ${(streams.memory[0]!.httpBytes / 2 ** 20).toFixed(0)} -> ${(last.httpBytes / 2 ** 20).toFixed(0)} MiB`);
  }
  context.signal.throwIfAborted();

  const reads = settings.readSeconds === 0 || students.length === 0 ? undefined : await readBurst(run, students, settings.readSeconds, settings.readConcurrency, flags.timeoutMs);
  if (reads) context.log(`queue: reads: ${phaseLine(reads.answers, reads.durationMs)}`);
  context.signal.throwIfAborted();

  const openedAt = Date.now() + 2_000;
  await changeCourseOpensAt(baseUrl, adminToken, QUEUED_COURSE, new Date(openedAt));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, openedAt - Date.now())));
  context.log(`queue: the course opens: ${students.length} places, ${settings.seats} seats + ${settings.waitlist} waitlist places, ${settings.bots} bots`);
  const rushWatch = await startCpuStopwatch(run.cpuRoots);
  const rush = await runQueueRush({
    ...flags.rush,
    baseUrl, databaseUrl: run.databaseUrl, course: QUEUED_COURSE, students, listener, openedAt, bots: settings.bots, places: settings.seats + settings.waitlist,
    requestTimeoutMs: flags.timeoutMs, signal: context.signal, log: context.log,
  });
  const rushCpu = await rushWatch.read();

  for (const student of students) {
    const stream = student.stream;
    if (!stream) continue;
    streams.messages += stream.messages;
    if (stream.state === 'open') streams.stillOpen += 1;
    // The last status seen, also from a message after the opening ended (it sets no `done`).
    else if (stream.state === 'ended' && isFinalStatus(student.status)) streams.endedByServer += 1;
    else {
      streams.dropped += 1;
      // Grouped by reason, last status seen and the 10 s after opening in which it ended.
      const when = stream.endedAt === undefined ? '?' : `${Math.floor((stream.endedAt - openedAt) / 10_000) * 10} s`;
      const key = `${stream.endReason ?? stream.state}, place ${student.status}, ${when} after opening`;
      streams.dropReasons[key] = (streams.dropReasons[key] ?? 0) + 1;
    }
    stream.close();
  }
  const revealed = (await readCourse(baseUrl, adminToken, QUEUED_COURSE)).queue?.seed ?? null;
  const { places, snapshot } = await readPlaces(run.databaseUrl);
  return { course: QUEUED_COURSE, settings, joins, joinCpu, streams, reads, rush, rushCpu, students, places, snapshot, seed: { commitment, revealed } };
}

export const queueScenario = defineScenario({
  name: 'queue',
  summary: 'the rush through the waiting room: joins, position streams, reads, then the opening with bots; order, ETA, invariants',
  flags: queueFlags,
  async run(flags, context) {
    const settings: QueueSettings = {
      students: flags.students,
      concurrency: flags.concurrency,
      joinRate: flags['join-rate'],
      order: flags.arrival ? 'arrival' : 'random',
      seats: flags.seats,
      waitlist: flags.waitlist,
      admissionSeconds: flags['admission-seconds'],
      streams: flags.streams,
      streamConcurrency: flags['stream-concurrency'],
      readSeconds: flags['read-seconds'],
      readConcurrency: flags['read-concurrency'],
      bots: flags.bots,
      workers: flags.workers,
    };
    if (settings.streams > settings.students) throw new UsageError(`--streams ${settings.streams} is more than --students ${settings.students}: a stream follows one student's place`);
    const setup = { name: 'queue', workers: settings.workers, emailConcurrency: flags['email-concurrency'], emailDelayMs: flags['email-delay-ms'] };
    const rush = {
      pollConcurrency: flags['poll-concurrency'],
      registerConcurrency: flags['register-concurrency'],
      pollMaxMs: flags['poll-max-ms'],
      firstPollSpreadMs: flags['first-poll-spread-ms'],
      timeoutMs: flags['opening-timeout-ms'],
    };
    const result = await withServiceRun(context, setup, (run) => queueOnService(run, settings, { timeoutMs: flags['timeout-ms'], rush }, context));
    return renderQueueReport(result);
  },
});
