// Owns the `seed` scenario, SPEC.md's story measured: the same N registrations in three models, each
// on a fresh service and database (sequential / concurrent, email in the request / on the job queue).
import { createCourse } from './admin-api.ts';
import { startCpuStopwatch, type CpuWindow } from './cpu-window.ts';
import { readDatabaseFacts } from './database-facts.ts';
import { arrivalsByRecipient, waitForEmails } from './email-arrivals.ts';
import { UsageError } from './flags.ts';
import { checkInvariants, type Violation } from '../test/support/invariants.ts';
import { type AnswerRecord, epochNow, observedAnswers, registerAll, type StudentRequest } from '../test/support/rush.ts';
import { startProgress } from './progress.ts';
import { defineScenario, type ScenarioContext } from './scenario.ts';
import { renderSeedReport } from './seed-report.ts';
import { emailDelayFlag, serviceFlags } from './service-flags.ts';
import { type RunEnvironment, withServiceRun } from './service-run.ts';
import type { ReceivedMessage } from '../test/support/smtp-server.ts';
import { maxOf } from './stats.ts';
import type { TimelineRow } from './charts.ts';

export type SeedModel = {
  number: number;
  label: string;
  /** Each answer waits for its email: the naive design, by the email-in-request plug-in. */
  emailInRequest: boolean;
  /** 'one': a request at a time; 'all': all N at once. */
  arrival: 'one' | 'all';
};

export const SEED_MODELS: readonly SeedModel[] = [
  { number: 1, label: 'sequential, email in request', emailInRequest: true, arrival: 'one' },
  { number: 2, label: 'concurrent, email in request', emailInRequest: true, arrival: 'all' },
  { number: 3, label: 'concurrent, email on the job queue, all workers', emailInRequest: false, arrival: 'all' },
];

export type SeedSettings = { n: number; emailDelayMs: number; workers: number; emailConcurrency: number; warmup: number };

export type SeedModelResult = {
  model: SeedModel;
  answers: AnswerRecord[];
  /** ms from the first request sent. */
  lastAnswerMs: number;
  lastEmailMs: number;
  emailsExpected: number;
  emailsReceived: number;
  cpu: CpuWindow;
  timeline: TimelineRow[];
  violations: Violation[];
};

const seedFlags = {
  n: { type: 'integer', description: 'registrations per model', default: 100, min: 1, max: 10_000 },
  'email-delay-ms': emailDelayFlag(2_000),
  models: { type: 'string', description: 'which models to run, e.g. 2,3', default: '1,2,3' },
  warmup: { type: 'integer', description: 'registrations (all at once, on another course, emails awaited) to warm each service up before it is measured', default: 20, min: 0, max: 1_000 },
  ...serviceFlags,
} as const;

function chooseModels(list: string): SeedModel[] {
  const numbers = list.split(',').map((s) => s.trim()).filter(Boolean);
  const models = numbers.map((n) => SEED_MODELS.find((m) => String(m.number) === n));
  if (models.length === 0 || models.some((m) => m === undefined)) throw new UsageError(`--models takes model numbers from 1 to ${SEED_MODELS.length}, e.g. 1,2,3; got "${list}"`);
  return [...new Set(models as SeedModel[])];
}

function students(n: number, course: string, domain: string): StudentRequest[] {
  return Array.from({ length: n }, (_, i) => ({ name: `Student ${i + 1}`, email: `student${i + 1}@${domain}`, course }));
}

/**
 * The first requests of a fresh service pay for its start (JIT compilation, database connections,
 * prepared statements): a few registrations on another course, and their emails, go first.
 */
async function warmUp(run: RunEnvironment, settings: SeedSettings, signal: AbortSignal): Promise<{ answers: AnswerRecord[]; messages: ReceivedMessage[] }> {
  if (settings.warmup === 0) return { answers: [], messages: [] };
  await createCourse(run.service.baseUrl, run.service.adminToken, { id: 'warmup', title: 'Warm-up', capacity: settings.warmup, waitlistCapacity: 0 });
  const answers = await registerAll({ baseUrl: run.service.baseUrl, requests: students(settings.warmup, 'warmup', 'warmup.example.org'), concurrency: settings.warmup, timeoutMs: 60_000 + 2 * settings.emailDelayMs, signal, progress: startProgress('warm-up', settings.warmup, { unit: 'answers' }) });
  const created = answers.filter((a) => a.status === 201).length;
  await waitForEmails(run.smtp, created, 60_000 + created * settings.emailDelayMs, signal, 'warm-up emails');
  const messages = run.smtp.messages.splice(0); // the measured run starts with an empty inbox
  return { answers, messages };
}

export const seedScenario = defineScenario({
  name: 'seed',
  summary: 'the story of SPEC.md: N registrations sequential vs concurrent, email in the request vs on the job queue',
  flags: seedFlags,
  async run(flags, context) {
    const settings: SeedSettings = { n: flags.n, emailDelayMs: flags['email-delay-ms'], workers: flags.workers, emailConcurrency: flags['email-concurrency'], warmup: flags.warmup };
    const models = chooseModels(flags.models);
    const results: SeedModelResult[] = [];
    for (const model of models) {
      results.push(await runModel(model, settings, context));
    }
    return renderSeedReport(settings, results);
  },
});

async function runModel(model: SeedModel, settings: SeedSettings, context: ScenarioContext): Promise<SeedModelResult> {
  const setup = { name: `seed_model_${model.number}`, workers: settings.workers, emailConcurrency: settings.emailConcurrency, emailInRequest: model.emailInRequest, emailDelayMs: settings.emailDelayMs };
  return withServiceRun(context, setup, async (run) => {
    const warm = await warmUp(run, settings, context.signal);
    await createCourse(run.service.baseUrl, run.service.adminToken, { id: 'seed', title: 'The seed course', capacity: settings.n, waitlistCapacity: 0 });
    context.log(`model ${model.number} (${model.label}): ${settings.n} registrations ${model.arrival === 'one' ? 'one at a time' : 'all at once'}`);

    const stopwatch = await startCpuStopwatch(run.cpuRoots);
    const start = epochNow();
    const answers = await registerAll({
      baseUrl: run.service.baseUrl,
      requests: students(settings.n, 'seed', 'example.org'),
      concurrency: model.arrival === 'one' ? 1 : settings.n,
      // An answer of models 1-2 waits for its email; with more requests than SMTP connections, in turns.
      timeoutMs: 60_000 + settings.emailDelayMs * Math.ceil(settings.n / settings.emailConcurrency),
      signal: context.signal,
      progress: startProgress(`model ${model.number}: registrations`, settings.n, { unit: 'answers' }),
    });
    const lastAnswerAt = maxOf(answers.map((a) => a.endedAt));
    const created = answers.filter((a) => a.status === 201).length;
    // Bound: every email one after the other, plus a minute.
    const emails = await waitForEmails(run.smtp, created, 60_000 + created * settings.emailDelayMs, context.signal, `model ${model.number}: emails`);
    const cpu = await stopwatch.read();
    if (!emails.complete) context.log(`model ${model.number}: only ${emails.distinct} of ${created} emails arrived in time`);

    const messages = [...run.smtp.messages];
    const arrivals = arrivalsByRecipient(messages);
    const lastEmailAt = maxOf(messages.map((m) => m.receivedAt));
    const facts = await readDatabaseFacts(run.databaseUrl);
    const violations = checkInvariants({
      courses: facts.courses,
      registrations: facts.registrations,
      answers: observedAnswers([...warm.answers, ...answers]),
      expectFull: ['seed'],
      emails: { events: facts.events, messageIds: [...warm.messages, ...messages].map((m) => m.messageId) },
    });
    const timeline = answers.map((a): TimelineRow => {
      const email = arrivals.get(a.request.email.toLowerCase());
      return {
        start: a.startedAt - start,
        end: a.endedAt - start,
        status: a.status,
        ...(email ? { emailData: email.dataAt - start, emailAccepted: email.receivedAt - start } : {}),
      };
    });
    return {
      model,
      answers,
      lastAnswerMs: lastAnswerAt - start,
      lastEmailMs: lastEmailAt - start,
      emailsExpected: created,
      emailsReceived: emails.distinct,
      cpu,
      timeline,
      violations,
    };
  });
}
