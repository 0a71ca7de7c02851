// Owns the `import` scenario: one generated CSV of R rows imported with IMPORT_THREADS=1 and with the
// pool, each on a fresh service and database; time to done, rows/s, CPU, memory of the service's
// processes, the HTTP workers' responsiveness meanwhile, and the outcome checked against the database.
import { createReadStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { request } from 'undici';
import { createCourse } from './admin-api.ts';
import { type CpuWindow, startCpuStopwatch } from './cpu-window.ts';
import { type ImportFile, writeImportFile } from './import-csv-file.ts';
import { type LoopDelaySample, type ProbeRecord, startMetricsScraper, startProbe } from './import-probe.ts';
import { renderImportReport } from './import-report.ts';
import { epochNow } from '../test/support/rush.ts';
import { cpuAccountingAvailable, cpuBetween, sampleCpu } from './process-cpu.ts';
import { type MemorySample, readStatusBytes, recordMemory, sampleMemory } from './process-memory.ts';
import { startProgress } from './progress.ts';
import { defineScenario, type ScenarioContext } from './scenario.ts';
import { emailDelayFlag, serviceFlags } from './service-flags.ts';
import { type RunEnvironment, withServiceRun } from './service-run.ts';
import type { Import } from '../src/http/schemas/import.schemas.ts';

export type ImportModel = { key: 'one-thread' | 'pool'; label: string; threads: number };

export type ImportSettings = {
  rows: number;
  threads: number;
  courses: number;
  duplicatePercent: number;
  probeRate: number;
  timeLimitS: number;
  emailDelayMs: number;
  workers: number;
  emailConcurrency: number;
};

/** GET /imports/{id} as the bench reads it: the service's own answer type, less its timestamps. */
export type ImportStatus = Omit<Import, 'createdAt' | 'finishedAt'>;

export type ImportCheck = { label: string; ok: boolean; detail: string };

export type ImportModelResult = {
  model: ImportModel;
  /** ms from the upload's first byte: 202 received, and status done seen (or the run stopped). */
  uploadMs: number;
  doneMs: number;
  /** 'done', 'failed', or why the bench stopped waiting ('time limit', 'stalled'). */
  outcome: 'done' | 'failed' | 'time limit' | 'stalled';
  final: ImportStatus | undefined;
  /** Rows processed over time, ms from the upload's start. */
  progress: { at: number; processed: number }[];
  cpu: CpuWindow;
  /** Of the service's CPU, the job worker's (its threads included); undefined off Linux. */
  jobsCpuMs: number | undefined;
  /** Resident memory over time (at: ms from the upload's start); before the upload; the job worker's kernel high-water mark. */
  memory: MemorySample[];
  memoryBefore: MemorySample;
  jobsHighWater: number | undefined;
  probeIdle: ProbeRecord[];
  probe: ProbeRecord[];
  probeSkipped: number;
  /** Event-loop delay p99 per role, per scrape (at: ms from the upload's start). */
  loopDelay: LoopDelaySample[];
  loopDelayIdle: LoopDelaySample[];
  scrapeFailures: number;
  /** Emails the bench's SMTP server accepted between the upload's start and done. */
  emailsDuringImport: number;
  /** Polls of GET /imports/{id} answered other than 200 (e.g. 503 overloaded) or not at all. */
  pollsRefused: number;
  checks: ImportCheck[];
};

const importFlags = {
  rows: { type: 'integer', description: 'data rows in the generated CSV file (duplicates and a few invalid rows included)', default: 100_000, min: 1, max: 3_000_000 },
  threads: { type: 'integer', description: 'IMPORT_THREADS of the pool model (the other model has 1)', default: availableParallelism(), min: 1, max: 64 },
  courses: { type: 'integer', description: 'courses the rows are spread over, each with room for all its students', default: 20, min: 1, max: 100 },
  duplicates: { type: 'integer', description: 'rows repeating an earlier student (other case and spacing), percent', default: 1, min: 0, max: 50 },
  'probe-rate': { type: 'integer', description: 'requests per second of the responsiveness probe during the import (GET /courses/{id} and POST /register alternating; 0: none)', default: 20, min: 0, max: 500 },
  'time-limit-s': { type: 'integer', description: 'stop waiting for an import after this long and report what was measured, with a projection (0: wait until done)', default: 0, min: 0, max: 86_400 },
  'email-delay-ms': emailDelayFlag(0),
  seed: { type: 'integer', description: 'seed of the generated file', default: 1, min: 0, max: 2 ** 31 - 1 },
  ...serviceFlags,
} as const;

const POLL_MS = 200;
const IDLE_PROBE_MS = 3_000;
/** No new row processed for this long: the import is stuck, the run fails. */
const STALL_MS = 300_000;
const PROBE_COURSE = 'probe';

export const importScenario = defineScenario({
  name: 'import',
  summary: 'a generated CSV of R rows imported with 1 thread and with the pool: time, rows/s, speed-up, memory, responsiveness',
  flags: importFlags,
  async run(flags, context) {
    const settings: ImportSettings = {
      rows: flags.rows,
      threads: flags.threads,
      courses: flags.courses,
      duplicatePercent: flags.duplicates,
      probeRate: flags['probe-rate'],
      timeLimitS: flags['time-limit-s'],
      emailDelayMs: flags['email-delay-ms'],
      workers: flags.workers,
      emailConcurrency: flags['email-concurrency'],
    };
    const database = await context.database();
    const started = Date.now();
    const file = await writeImportFile({ file: path.join(database.dir, 'import.csv'), rows: settings.rows, courses: settings.courses, duplicatePercent: settings.duplicatePercent, seed: flags.seed });
    context.log(`import: wrote ${file.rows} rows (${file.unique} students, ${file.duplicates} repeated, ${file.invalid} invalid, ${file.quoted} quoted names), ${(file.bytes / 2 ** 20).toFixed(1)} MiB in ${Date.now() - started} ms`);
    const models: ImportModel[] = [
      { key: 'one-thread', label: '1 thread', threads: 1 },
      { key: 'pool', label: `pool of ${settings.threads} thread${settings.threads === 1 ? '' : 's'}`, threads: settings.threads },
    ];
    const results: ImportModelResult[] = [];
    for (const model of models) results.push(await runModel(model, file, settings, context));
    return renderImportReport(settings, file, results);
  },
});

async function runModel(model: ImportModel, file: ImportFile, settings: ImportSettings, context: ScenarioContext): Promise<ImportModelResult> {
  const setup = {
    name: `import_${model.key}`,
    workers: settings.workers,
    emailConcurrency: settings.emailConcurrency,
    emailDelayMs: settings.emailDelayMs,
    environment: { IMPORT_THREADS: String(model.threads), IMPORT_MAX_BYTES: String(Math.max(256 * 2 ** 20, file.bytes + 2 ** 20)) },
  };
  let databaseUrl: string | undefined;
  try {
    return await withServiceRun(context, setup, async (run) => {
      databaseUrl = run.databaseUrl;
      return await measureImport(model, file, settings, run, context);
    });
  } finally {
    // The next model gets the cores and the disk to itself: no autovacuum of this one's million rows.
    if (databaseUrl !== undefined && !context.signal.aborted) {
      await (await context.database()).dropDatabase(databaseUrl).catch((error: unknown) => context.log(`import: could not drop ${databaseUrl}: ${String(error)}`));
    }
  }
}

async function adminJson<T>(run: RunEnvironment, method: 'GET' | 'POST', route: string): Promise<T> {
  const answer = await request(`${run.service.baseUrl}${route}`, { method, headers: { authorization: `Bearer ${run.service.adminToken}` }, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await answer.body.text();
  if (answer.statusCode !== 200) throw new Error(`${method} ${route}: ${answer.statusCode} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

async function upload(run: RunEnvironment, file: ImportFile): Promise<ImportStatus> {
  const answer = await request(`${run.service.baseUrl}/imports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${run.service.adminToken}`, 'content-type': 'text/csv', 'content-length': String(file.bytes) },
    body: createReadStream(file.file),
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  });
  const text = await answer.body.text();
  if (answer.statusCode !== 202) throw new Error(`POST /imports: ${answer.statusCode} ${text.slice(0, 500)}`);
  return JSON.parse(text) as ImportStatus;
}

async function measureImport(model: ImportModel, file: ImportFile, settings: ImportSettings, run: RunEnvironment, context: ScenarioContext): Promise<ImportModelResult> {
  const { baseUrl, adminToken } = run.service;
  for (const [id, students] of file.demand) {
    await createCourse(baseUrl, adminToken, { id, title: `Imported course ${id}`, capacity: students + Math.max(5, Math.ceil(students / 100)), waitlistCapacity: 0 });
  }
  await createCourse(baseUrl, adminToken, { id: PROBE_COURSE, title: 'The probe\'s course', capacity: 1_000_000, waitlistCapacity: 0 });
  const readCourse = [...file.demand.keys()][0] ?? PROBE_COURSE;
  const probeOptions = { baseUrl, rate: settings.probeRate, readCourse, registerCourse: PROBE_COURSE };

  // The service idle: the probe's latency and the loop delay to compare with (also warms it up).
  const idleScraper = startMetricsScraper(baseUrl);
  const idleProbe = startProbe({ ...probeOptions, label: `${model.key}-idle` });
  await sleep(IDLE_PROBE_MS, undefined, { signal: context.signal });
  const idle = await idleProbe.stop();
  const idleDelay = await idleScraper.stop();
  run.smtp.messages.splice(0);

  const memoryBefore = await sampleMemory(run.service.pid);
  const jobsPid = memoryBefore.jobsPid;
  if (jobsPid === undefined) throw new Error(`${model.label}: no job worker (REGISTRAR_ROLE=jobs) in the service's process tree`);
  const memory = recordMemory(run.service.pid);
  const scraper = startMetricsScraper(baseUrl);
  const stopwatch = await startCpuStopwatch(run.cpuRoots);
  const jobsCpuBefore = cpuAccountingAvailable() ? await sampleCpu({ jobs: jobsPid }) : undefined;
  const probe = startProbe({ ...probeOptions, label: model.key });

  context.log(`${model.label}: uploading ${file.rows} rows (IMPORT_THREADS=${model.threads})`);
  const start = epochNow();
  let emails = 0;
  const drainEmails = () => {
    // The bench keeps no copy of a million emails: counted, then dropped.
    emails += run.smtp.messages.splice(0).length;
    run.smtp.attempts.clear();
  };
  const accepted = await upload(run, file);
  const uploadMs = epochNow() - start;
  context.log(`${model.label}: 202 after ${Math.round(uploadMs)} ms, import ${accepted.id}; polling every ${POLL_MS} ms`);

  const progress: { at: number; processed: number }[] = [];
  let status: ImportStatus = accepted;
  let outcome: ImportModelResult['outcome'] | undefined;
  let lastAdvance = epochNow();
  let pollsRefused = 0;
  const line = startProgress(`${model.label}: import`, file.rows, { unit: 'rows' });
  try {
    while (outcome === undefined) {
      await sleep(POLL_MS, undefined, { signal: context.signal });
      try {
        status = await adminJson<ImportStatus>(run, 'GET', `/imports/${accepted.id}`);
      } catch (error) {
        // A loaded service may shed a poll (503 overloaded) or drop it: the next one asks again.
        pollsRefused += 1;
        if (pollsRefused % 25 === 1) context.log(`${model.label}: a poll was refused or failed (${pollsRefused} so far): ${String(error).slice(0, 200)}`);
      }
      const now = epochNow();
      drainEmails();
      if (status.processed > (progress.at(-1)?.processed ?? 0)) lastAdvance = now;
      progress.push({ at: now - start, processed: status.processed });
      line.update(status.processed);
      if (status.status === 'done' || status.status === 'failed') outcome = status.status;
      else if (settings.timeLimitS > 0 && now - start >= settings.timeLimitS * 1000) outcome = 'time limit';
      else if (now - lastAdvance > STALL_MS) outcome = 'stalled';
    }
  } finally {
    line.finish(`${outcome ?? 'interrupted'}, ${emails} emails so far`);
  }
  const doneMs = epochNow() - start;
  const cpu = await stopwatch.read();
  const jobsCpuMs = jobsCpuBefore ? cpuBetween(jobsCpuBefore, await sampleCpu({ jobs: jobsPid })).byTree['jobs'] : undefined;
  const jobsHighWater = await readStatusBytes(jobsPid, 'VmHWM');
  const probed = await probe.stop();
  const delays = await scraper.stop();
  const memorySamples = await memory.stop();
  drainEmails();
  context.log(`${model.label}: ${outcome} after ${(doneMs / 1000).toFixed(1)} s (${status.processed} rows processed)`);

  const checks = await checkOutcome(run.databaseUrl, accepted.id, status, outcome, file);
  return {
    model,
    uploadMs,
    doneMs,
    outcome,
    final: status,
    progress,
    cpu,
    jobsCpuMs,
    memory: memorySamples.map((s) => ({ ...s, at: s.at - start })),
    memoryBefore,
    jobsHighWater,
    probeIdle: idle.records,
    probe: probed.records,
    probeSkipped: probed.skipped + idle.skipped,
    loopDelay: delays.samples.map((s) => ({ ...s, at: s.at - start })),
    loopDelayIdle: idleDelay.samples,
    scrapeFailures: delays.failures,
    emailsDuringImport: emails,
    pollsRefused,
    checks,
  };
}

/**
 * What the import left in the database, read in one snapshot: its counters add up, every created
 * row is stored (no more, no less), no course is over capacity or off its counters, nobody is
 * registered twice, one event (and so one email job) per registration. When the run stopped
 * before the end (time limit), the same holds for the batches committed so far.
 */
async function checkOutcome(databaseUrl: string, importId: string, seen: ImportStatus, outcome: ImportModelResult['outcome'], file: ImportFile): Promise<ImportCheck[]> {
  const checks: ImportCheck[] = [];
  const check = (label: string, ok: boolean, detail: string) => checks.push({ label, ok, detail });
  const finished = outcome === 'done';
  check('the import finished: status done', finished || outcome === 'time limit', outcome === 'failed' ? `failed: ${seen.failure ?? '?'}` : outcome === 'time limit' ? `stopped by --time-limit-s at ${seen.processed} of ${file.rows} rows (not a failure)` : outcome);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10, idle_timeout: 5 });
  try {
    await sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
      const [row] = await tx<{ status: string; rows: number; processed: number; created: number; existing: number; waitlisted: number; rejected: number }[]>`
        SELECT status, rows, processed, created, existing, waitlisted, rejected FROM imports WHERE id = ${importId}`;
      if (!row) {
        check('the import is stored', false, `no imports row ${importId}`);
        return;
      }
      check('created + existing + rejected = rows', row.created + row.existing + row.rejected === row.rows && row.processed === row.rows,
        `${row.created} + ${row.existing} + ${row.rejected} = ${row.created + row.existing + row.rejected}; rows ${row.rows}, processed ${row.processed}`);
      if (finished) {
        const expected = { rows: file.rows, created: file.unique, existing: file.duplicates, rejected: file.invalid, waitlisted: 0 };
        const got = { rows: row.rows, created: row.created, existing: row.existing, rejected: row.rejected, waitlisted: row.waitlisted };
        check('the counts the file implies', JSON.stringify(expected) === JSON.stringify(got), `expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
      }
      const [stored] = await tx<{ imported: number; all: number; events: number; twice: number }[]>`
        SELECT (SELECT count(*) FROM registrations WHERE course_id <> ${PROBE_COURSE})::int AS imported,
               (SELECT count(*) FROM registrations)::int AS all,
               (SELECT count(*) FROM registration_events)::int AS events,
               (SELECT count(*) FROM (SELECT 1 FROM registrations WHERE status <> 'cancelled'
                 GROUP BY course_id, email_key HAVING count(*) > 1) d)::int AS twice`;
      check('registrations stored = created', stored!.imported === row.created, `${stored!.imported} registrations on the imported courses, created ${row.created}`);
      check('one active registration per (course, email)', stored!.twice === 0, `${stored!.twice} (course, email) pairs registered more than once`);
      check('one event (and email job) per registration', stored!.events === stored!.all, `${stored!.events} events for ${stored!.all} registrations (probe's included)`);
      const courses = await tx<{ id: string; capacity: number; waitlist_capacity: number; enrolled: number; waitlisted: number; enrolled_rows: number; waitlisted_rows: number }[]>`
        SELECT c.id, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
          count(r.id) FILTER (WHERE r.status = 'enrolled')::int AS enrolled_rows,
          count(r.id) FILTER (WHERE r.status = 'waitlisted')::int AS waitlisted_rows
        FROM courses c LEFT JOIN registrations r ON r.course_id = c.id GROUP BY c.id ORDER BY c.id`;
      const over = courses.filter((c) => c.enrolled_rows > c.capacity || c.waitlisted_rows > c.waitlist_capacity);
      check('no course over capacity', over.length === 0, over.length === 0 ? `${courses.length} courses within capacity` : over.map((c) => `${c.id}: ${c.enrolled_rows}/${c.capacity} enrolled, ${c.waitlisted_rows}/${c.waitlist_capacity} waitlisted`).join('; '));
      const off = courses.filter((c) => c.enrolled !== c.enrolled_rows || c.waitlisted !== c.waitlisted_rows);
      check('course counters = rows stored', off.length === 0, off.length === 0 ? 'all equal' : off.map((c) => `${c.id}: counters ${c.enrolled}/${c.waitlisted}, rows ${c.enrolled_rows}/${c.waitlisted_rows}`).join('; '));
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
  return checks;
}
