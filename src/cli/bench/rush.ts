// Owns the `rush` scenario: N students at once at concurrency C on M courses, one far over capacity;
// measures throughput, latency, CPU, emails, and checks the invariants against the database.
import { createCourse } from './admin-api.ts';
import { startCpuStopwatch, type CpuWindow } from './cpu-window.ts';
import { readDatabaseFacts } from './database-facts.ts';
import { waitForEmails } from './email-arrivals.ts';
import { checkInvariants, type Violation } from './invariants.ts';
import { type AnswerRecord, epochNow, observedAnswers, registerAll, type StudentRequest } from './load-generator.ts';
import { renderRushReport } from './rush-report.ts';
import { buildRushWorkload, type RushWorkload } from './rush-workload.ts';
import { defineScenario } from './scenario.ts';
import { serviceFlags } from './service-flags.ts';
import { maxOf } from './stats.ts';
import { withServiceRun } from './service-run.ts';

export type RushSettings = {
  students: number;
  courses: number;
  concurrency: number;
  hotCapacity: number;
  hotWaitlist: number;
  hotSharePercent: number;
  duplicatePercent: number;
  warmup: number;
  emailDelayMs: number;
  emailTimeoutMs: number;
  workers: number;
  emailConcurrency: number;
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
  emailsAtLastAnswer: number;
  emailsExpected: number;
  emailsReceived: number;
  /** As the service recorded them in email_deliveries. */
  emailsRecorded: { sent: number; failed: number };
  cpuRush: CpuWindow;
  cpuEmails: CpuWindow | undefined;
  rows: number;
  violations: Violation[];
};

const rushFlags = {
  students: { type: 'integer', description: 'distinct students, all arriving at once', default: 5_000, min: 1, max: 200_000 },
  courses: { type: 'integer', description: 'courses: one hot, the others with room for all who want them', default: 20, min: 2, max: 1_000 },
  concurrency: { type: 'integer', description: 'requests in flight (undici Pool connections)', default: 256, min: 1, max: 4_096 },
  'hot-capacity': { type: 'integer', description: 'seats of the hot course', default: 100, min: 0, max: 100_000 },
  'hot-waitlist': { type: 'integer', description: 'waitlist places of the hot course', default: 50, min: 0, max: 100_000 },
  'hot-share': { type: 'integer', description: 'percent of the students who want the hot course', default: 30, min: 0, max: 100 },
  duplicates: { type: 'integer', description: 'extra requests repeating a student (same course and email), percent of students', default: 2, min: 0, max: 100 },
  warmup: { type: 'integer', description: 'registrations on a separate course before the measured rush', default: 200, min: 0, max: 10_000 },
  'email-delay-ms': { type: 'integer', description: 'time the SMTP server takes per message', default: 0, min: 0, max: 60_000 },
  'email-timeout-ms': { type: 'integer', description: 'how long to wait for every email after the rush (0: do not wait or check emails)', default: 120_000, min: 0, max: 1_800_000 },
  'timeout-ms': { type: 'integer', description: 'per request: longer counts as an error', default: 60_000, min: 100, max: 600_000 },
  seed: { type: 'integer', description: 'seed of the generated workload', default: 1, min: 0, max: 2 ** 31 - 1 },
  ...serviceFlags,
} as const;

function warmupRequests(count: number): StudentRequest[] {
  return Array.from({ length: count }, (_, i) => ({ name: `Warm-up ${i + 1}`, email: `warmup${i + 1}@warmup.example.org`, course: 'warmup' }));
}

export const rushScenario = defineScenario({
  name: 'rush',
  summary: 'registration opens: N students at once on M courses, one far over capacity; throughput, latency, invariants',
  flags: rushFlags,
  async run(flags, context) {
    const settings: RushSettings = {
      students: flags.students,
      courses: flags.courses,
      concurrency: flags.concurrency,
      hotCapacity: flags['hot-capacity'],
      hotWaitlist: flags['hot-waitlist'],
      hotSharePercent: flags['hot-share'],
      duplicatePercent: flags.duplicates,
      warmup: flags.warmup,
      emailDelayMs: flags['email-delay-ms'],
      emailTimeoutMs: flags['email-timeout-ms'],
      workers: flags.workers,
      emailConcurrency: flags['email-concurrency'],
    };
    const workload = buildRushWorkload({
      students: settings.students,
      courses: settings.courses,
      hotCapacity: settings.hotCapacity,
      hotWaitlist: settings.hotWaitlist,
      hotSharePercent: settings.hotSharePercent,
      duplicatePercent: settings.duplicatePercent,
      seed: flags.seed,
    });
    const setup = { name: 'rush', workers: settings.workers, emailConcurrency: settings.emailConcurrency, emailDelivery: 'queue' as const, emailDelayMs: settings.emailDelayMs };
    const result = await withServiceRun(context, setup, async (run): Promise<RushResult> => {
      const { baseUrl, adminToken } = run.service;
      for (const course of workload.courses) await createCourse(baseUrl, adminToken, course);
      await createCourse(baseUrl, adminToken, { id: 'warmup', title: 'Warm-up', capacity: Math.max(1, settings.warmup), waitlistCapacity: 0 });
      const warmup = settings.warmup === 0 ? [] : await registerAll({ baseUrl, requests: warmupRequests(settings.warmup), concurrency: Math.min(32, settings.concurrency), timeoutMs: flags['timeout-ms'], signal: context.signal });

      context.log(`rush: ${workload.requests.length} requests (${settings.students} students, ${workload.duplicates} duplicates) on ${settings.courses} courses at concurrency ${settings.concurrency}`);
      const rushWatch = await startCpuStopwatch(run.cpuRoots);
      const start = epochNow();
      const answers = await registerAll({ baseUrl, requests: workload.requests, concurrency: settings.concurrency, timeoutMs: flags['timeout-ms'], signal: context.signal });
      const end = answers.length === 0 ? start : maxOf(answers.map((a) => a.endedAt));
      const cpuRush = await rushWatch.read();
      const emailWatch = await startCpuStopwatch(run.cpuRoots);
      const emailsAtLastAnswer = new Set(run.smtp.messages.map((m) => m.messageId)).size;

      let facts = await readDatabaseFacts(run.databaseUrl);
      let cpuEmails: CpuWindow | undefined;
      let emailsReceived = emailsAtLastAnswer;
      if (settings.emailTimeoutMs > 0) {
        context.log(`rush: waiting for ${facts.events} emails (${emailsAtLastAnswer} already arrived)`);
        emailsReceived = (await waitForEmails(run.smtp, facts.events, settings.emailTimeoutMs, context.signal)).distinct;
        cpuEmails = await emailWatch.read();
        facts = await readDatabaseFacts(run.databaseUrl);
      }
      const messages = [...run.smtp.messages];
      const violations = checkInvariants({
        courses: facts.courses,
        registrations: facts.registrations,
        answers: observedAnswers([...warmup, ...answers]),
        expectFull: workload.expectFull,
        ...(settings.emailTimeoutMs > 0 ? { emails: { events: facts.events, messageIds: messages.map((m) => m.messageId) } } : {}),
      });
      return {
        settings,
        workload,
        answers,
        start,
        end,
        lastEmailMs: settings.emailTimeoutMs > 0 ? maxOf(messages.map((m) => m.receivedAt)) - start : Number.NaN,
        emailsAtLastAnswer,
        emailsExpected: facts.events,
        emailsReceived,
        emailsRecorded: { sent: facts.emailsRecordedSent, failed: facts.emailsRecordedFailed },
        cpuRush,
        cpuEmails,
        rows: facts.registrations.length,
        violations,
      };
    });
    return renderRushReport(result);
  },
});
