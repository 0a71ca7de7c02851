// Owns the `rush` scenario: N students at once at concurrency C on M courses, one far over capacity
// (or a preset case: --hot, --hot-full, --spread); measures throughput, latency, CPU, emails, checks
// the invariants against the database, and optionally PostgreSQL's own ceiling for the same work.
import { FULL_COURSE_RECHECK_MS } from '../src/domain/full-courses.ts';
import { type CourseSpec, createCourse } from './admin-api.ts';
import { startCpuStopwatch, type CpuWindow } from './cpu-window.ts';
import { type DatabaseCeiling, measureDatabaseCeiling, observedDatabaseAnswers } from './database-ceiling.ts';
import { readDatabaseFacts } from './database-facts.ts';
import { distinctMessages, waitForEmails } from './email-arrivals.ts';
import { UsageError } from './flags.ts';
import { checkFreedSlots, DEFAULT_FREED_SLOT_MARGIN_MS, type FreedSlotCheck } from './freed-slot-check.ts';
import { checkInvariants, type Violation } from '../test/support/invariants.ts';
import { type AnswerRecord, epochNow, observedAnswers, registerAll, type StudentRequest } from '../test/support/rush.ts';
import { startProgress } from './progress.ts';
import { resolveRushCase, RUSH_CASES, type RushCase } from './rush-cases.ts';
import { renderRushReport } from './rush-report.ts';
import { withSingleCourseComparison } from './rush-multi-report.ts';
import { buildRushWorkload, HOT_COURSE, MULTI_COURSES, type RushWorkload } from './rush-workload.ts';
import { defineScenario, type ScenarioContext } from './scenario.ts';
import { emailDelayFlag, serviceFlags } from './service-flags.ts';
import { type RunEnvironment, withServiceRun } from './service-run.ts';
import { maxOf } from './stats.ts';

export type RushSettings = {
  rushCase: RushCase | undefined;
  /** The preset's flags given on the command line too, e.g. "--students 500". */
  overridden: string[];
  students: number;
  courses: number;
  concurrency: number;
  hotCapacity: number;
  hotWaitlist: number;
  hotSharePercent: number;
  duplicatePercent: number;
  /** Percent of the students asking for several courses in one request (0: none). */
  multiPercent: number;
  warmup: number;
  emailDelayMs: number;
  emailTimeoutMs: number;
  timeoutMs: number;
  workers: number;
  emailConcurrency: number;
  freedSlotMarginMs: number;
  compareDatabase: boolean;
};

export type RushResult = {
  settings: RushSettings;
  workload: RushWorkload;
  answers: AnswerRecord[];
  /** Epoch ms: first request sent, last answer received. */
  start: number;
  end: number;
  /** ms from start; NaN when no email was waited for. */
  lastEmailMs: number;
  /** The rush's own emails received by its last answer (the warm-up's arrived before it began). */
  emailsAtLastAnswer: number;
  /** The rush's own emails (warm-up included), before the freed-slot check added any. */
  emailsExpected: number;
  emailsReceived: number;
  /** As the service recorded them in email_deliveries. */
  emailsRecorded: { sent: number; failed: number };
  cpuRush: CpuWindow;
  cpuEmails: CpuWindow | undefined;
  /** --hot-full: the cancels and capacity raises after the rush, and their delays. */
  freedSlots: FreedSlotCheck | undefined;
  rows: number;
  violations: Violation[];
  /** --compare-db: the same work straight on PostgreSQL, with its own invariant check. */
  database?: DatabaseCeiling & { violations: Violation[] };
};

const rushFlags = {
  ...Object.fromEntries(RUSH_CASES.map((c) => [c.name, { type: 'boolean', description: `case: ${c.summary} (flags given with it override its values)` }] as const)) as
    Record<RushCase['name'], { type: 'boolean'; description: string }>,
  students: { type: 'integer', description: 'distinct students, all arriving at once', default: 5_000, min: 1, max: 200_000 },
  courses: { type: 'integer', description: 'courses: one hot, the others with room for all who want them (1: the hot course alone, with --hot-share 100)', default: 20, min: 1, max: 1_000 },
  concurrency: { type: 'integer', description: 'requests in flight (undici Pool connections)', default: 256, min: 1, max: 4_096 },
  'hot-capacity': { type: 'integer', description: 'seats of the hot course', default: 100, min: 0, max: 100_000 },
  'hot-waitlist': { type: 'integer', description: 'waitlist places of the hot course', default: 50, min: 0, max: 100_000 },
  'hot-share': { type: 'integer', description: 'percent of the students who want the hot course', default: 30, min: 0, max: 100 },
  multi: { type: 'integer', description: `percent of the students asking for ${MULTI_COURSES} courses in one request (all or nothing); the run measures the same rush single-course only first, on a fresh service, and prints both side by side`, default: 0, min: 0, max: 100 },
  duplicates: { type: 'integer', description: 'extra requests repeating a student (same course and email), percent of students', default: 2, min: 0, max: 100 },
  warmup: { type: 'integer', description: 'requests on a separate course with seats for half of them, before the measured rush (its emails are sent before the rush starts)', default: 2_000, min: 0, max: 20_000 },
  'freed-slot-margin-ms': { type: 'integer', description: `--hot-full: how much later than FULL_COURSE_RECHECK_MS (${FULL_COURSE_RECHECK_MS} ms) a freed place may be offered before the run fails`, default: DEFAULT_FREED_SLOT_MARGIN_MS, min: 0, max: 60_000 },
  'compare-db': { type: 'boolean', description: 'after the rush, the same registrations straight on a fresh database (SELECT registrar_register_batch of one registration per registration, at the same concurrency, at most 256 connections): PostgreSQL\'s own ceiling beside the service' },
  'email-delay-ms': emailDelayFlag(0),
  'email-timeout-ms': { type: 'integer', description: 'how long to wait for every email after the rush (0: do not wait or check emails)', default: 120_000, min: 0, max: 1_800_000 },
  'timeout-ms': { type: 'integer', description: 'per request: longer counts as an error', default: 60_000, min: 100, max: 600_000 },
  seed: { type: 'integer', description: 'seed of the generated workload', default: 1, min: 0, max: 2 ** 31 - 1 },
  ...serviceFlags,
} as const;

const WARMUP_COURSE = 'warmup';

/**
 * Seats for half the warm-up: its second half is refused (409 course-full), so that both paths of
 * POST /register are compiled before the measured rush. A fresh process is about twice as costly
 * per request for its first ten thousand or so (the JIT); docs/benchmarks.md has the figures.
 */
function warmupCourse(count: number): CourseSpec {
  return { id: WARMUP_COURSE, title: 'Warm-up', capacity: Math.max(1, Math.ceil(count / 2)), waitlistCapacity: 0 };
}

function warmupRequests(count: number): StudentRequest[] {
  return Array.from({ length: count }, (_, i) => ({ name: `Warm-up ${i + 1}`, email: `warmup${i + 1}@warmup.example.org`, course: WARMUP_COURSE }));
}

/** Courses, warm-up, the measured rush, its emails, the freed-slot check, then the invariants. */
async function rushOnService(run: RunEnvironment, settings: RushSettings, workload: RushWorkload, context: ScenarioContext): Promise<Omit<RushResult, 'database'>> {
  const { baseUrl, adminToken } = run.service;
  for (const course of [...workload.courses, warmupCourse(settings.warmup)]) await createCourse(baseUrl, adminToken, course);
  const load = { baseUrl, timeoutMs: settings.timeoutMs, signal: context.signal };
  const warmup = settings.warmup === 0 ? [] : await registerAll({ ...load, requests: warmupRequests(settings.warmup), concurrency: settings.concurrency, progress: startProgress('rush: warm-up', settings.warmup, { unit: 'answers' }) });
  // The rush starts on a quiet service: the warm-up's emails are not the rush's competition.
  const warmupEmails = warmup.filter((a) => a.status === 201).length;
  if (settings.emailTimeoutMs > 0 && warmupEmails > 0) {
    context.log(`rush: warm-up done (${warmup.length} requests), waiting for its ${warmupEmails} emails`);
    await waitForEmails(run.smtp, warmupEmails, settings.emailTimeoutMs, context.signal, 'rush: warm-up emails');
  }
  const emailsBeforeRush = distinctMessages(run.smtp);

  context.log(`rush: ${workload.requests.length} requests (${settings.students} students, ${workload.duplicates} duplicates) on ${settings.courses} courses at concurrency ${settings.concurrency}`);
  const rushWatch = await startCpuStopwatch(run.cpuRoots);
  const start = epochNow();
  const answers = await registerAll({ ...load, requests: workload.requests, concurrency: settings.concurrency, progress: startProgress('rush', workload.requests.length, { unit: 'answers' }) });
  const end = answers.length === 0 ? start : maxOf(answers.map((a) => a.endedAt));
  const cpuRush = await rushWatch.read();
  const emailWatch = await startCpuStopwatch(run.cpuRoots);
  const emailsReceivedAtLastAnswer = distinctMessages(run.smtp);
  const emailsAtLastAnswer = emailsReceivedAtLastAnswer - emailsBeforeRush;

  let rushFacts = await readDatabaseFacts(run.databaseUrl);
  let cpuEmails: CpuWindow | undefined;
  let emailsReceived = emailsReceivedAtLastAnswer;
  if (settings.emailTimeoutMs > 0) {
    context.log(`rush: waiting for ${rushFacts.events} emails (${emailsReceivedAtLastAnswer} already arrived)`);
    emailsReceived = (await waitForEmails(run.smtp, rushFacts.events, settings.emailTimeoutMs, context.signal, 'rush: emails')).distinct;
    cpuEmails = await emailWatch.read();
    rushFacts = await readDatabaseFacts(run.databaseUrl);
  }
  const rushMessages = [...run.smtp.messages];

  // After the emails: the delays measured are the service's, not the job worker's competition.
  let freedSlots: FreedSlotCheck | undefined;
  if (settings.rushCase?.checksFreedSlots) {
    context.log(`rush: freed-slot check on the full course ${HOT_COURSE}`);
    freedSlots = await checkFreedSlots({
      baseUrl, adminToken, course: HOT_COURSE, capacity: settings.hotCapacity, workers: settings.workers, marginMs: settings.freedSlotMarginMs,
      rushAnswers: answers, signal: context.signal, log: context.log,
    });
  }

  let facts = await readDatabaseFacts(run.databaseUrl);
  if (settings.emailTimeoutMs > 0 && facts.events > rushFacts.events) {
    await waitForEmails(run.smtp, facts.events, settings.emailTimeoutMs, context.signal);
    facts = await readDatabaseFacts(run.databaseUrl);
  }
  const violations = checkInvariants({
    courses: facts.courses,
    registrations: facts.registrations,
    answers: observedAnswers([...warmup, ...answers, ...(freedSlots?.answers ?? [])]),
    expectFull: workload.expectFull,
    ...(settings.emailTimeoutMs > 0 ? { emails: { events: facts.events, messageIds: run.smtp.messages.map((m) => m.messageId) } } : {}),
  });
  return {
    settings,
    workload,
    answers,
    start,
    end,
    lastEmailMs: settings.emailTimeoutMs > 0 ? maxOf(rushMessages.map((m) => m.receivedAt)) - start : Number.NaN,
    emailsAtLastAnswer,
    emailsExpected: rushFacts.events,
    emailsReceived,
    emailsRecorded: { sent: rushFacts.emailsRecordedSent, failed: rushFacts.emailsRecordedFailed },
    cpuRush,
    cpuEmails,
    freedSlots,
    rows: facts.registrations.length,
    violations,
  };
}

/** The rush's courses and registrations straight on a fresh database of the same cluster; the service is stopped by now. */
async function measureOnDatabase(settings: RushSettings, workload: RushWorkload, context: ScenarioContext): Promise<RushResult['database']> {
  const database = await context.database();
  const databaseUrl = await database.createDatabase('bench_rush_database_only');
  context.log(`rush: the same ${workload.requests.length} registrations straight on PostgreSQL (statement per registration, concurrency ${settings.concurrency})`);
  const ceiling = await measureDatabaseCeiling({
    databaseUrl,
    courses: [...workload.courses, warmupCourse(settings.warmup)],
    warmup: warmupRequests(settings.warmup),
    requests: workload.requests,
    concurrency: settings.concurrency,
    strategy: 'statement-per-registration',
    postmasterPid: await database.postmasterPid(),
    signal: context.signal,
  });
  const facts = await readDatabaseFacts(databaseUrl);
  const violations = checkInvariants({
    courses: facts.courses,
    registrations: facts.registrations,
    answers: observedDatabaseAnswers([...ceiling.warmupAnswers, ...ceiling.answers]),
    expectFull: workload.expectFull,
  });
  return { ...ceiling, violations };
}

export const rushScenario = defineScenario({
  name: 'rush',
  summary: 'registration opens: N students at once on M courses, one far over capacity; throughput, latency, invariants',
  flags: rushFlags,
  async run(flags, context) {
    const { rushCase, values, overridden } = resolveRushCase(flags);
    const settings: RushSettings = {
      rushCase,
      overridden,
      students: values.students,
      courses: values.courses,
      concurrency: values.concurrency,
      hotCapacity: values['hot-capacity'],
      hotWaitlist: values['hot-waitlist'],
      hotSharePercent: values['hot-share'],
      duplicatePercent: values.duplicates,
      multiPercent: flags.multi,
      warmup: flags.warmup,
      emailDelayMs: flags['email-delay-ms'],
      emailTimeoutMs: flags['email-timeout-ms'],
      timeoutMs: flags['timeout-ms'],
      workers: flags.workers,
      emailConcurrency: flags['email-concurrency'],
      freedSlotMarginMs: flags['freed-slot-margin-ms'],
      compareDatabase: flags['compare-db'],
    };
    const workloadOf = (multiPercent: number) => buildRushWorkload({
      students: settings.students,
      courses: settings.courses,
      hotCapacity: settings.hotCapacity,
      hotWaitlist: settings.hotWaitlist,
      hotSharePercent: settings.hotSharePercent,
      duplicatePercent: settings.duplicatePercent,
      multiPercent,
      seed: flags.seed,
    });
    const workload = workloadOf(settings.multiPercent);
    if (settings.multiPercent > 0 && (settings.compareDatabase || rushCase?.checksFreedSlots)) {
      throw new UsageError('--multi measures requests for several courses against the single-course rush: not with --compare-db or a freed-slot case');
    }
    if (settings.multiPercent > 0 && settings.courses <= MULTI_COURSES) throw new UsageError(`--multi needs --courses above ${MULTI_COURSES}`);
    if (rushCase?.checksFreedSlots && !workload.expectFull.includes(HOT_COURSE)) {
      throw new UsageError(`--${rushCase.name} needs the hot course full: ${workload.hotDemand} students want it for ${settings.hotCapacity} seats + ${settings.hotWaitlist} waitlist places`);
    }
    const setup = { name: 'rush', workers: settings.workers, emailConcurrency: settings.emailConcurrency, emailDelayMs: settings.emailDelayMs };
    const single = settings.multiPercent > 0
      ? await withServiceRun(context, { ...setup, name: 'rush-single' }, (run) => rushOnService(run, { ...settings, multiPercent: 0 }, workloadOf(0), context))
      : undefined;
    const result = await withServiceRun(context, setup, (run) => rushOnService(run, settings, workload, context));
    if (single) {
      const singleReport = renderRushReport(single);
      return withSingleCourseComparison(renderRushReport(result), single, result, singleReport.failures);
    }
    const database = settings.compareDatabase ? await measureOnDatabase(settings, workload, context) : undefined;
    return renderRushReport({ ...result, ...(database ? { database } : {}) });
  },
});
