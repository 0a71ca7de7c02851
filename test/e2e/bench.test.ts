// `npm run bench` end to end at a small size, as a user runs it (a child process that starts its
// own PostgreSQL, SMTP server and service): exit code, printed verdict, progress lines on stderr,
// an HTML report with uPlot charts (drawn in a real browser for seed), nothing left behind, also
// after a Ctrl-C. And checkInvariants fed good and broken snapshots.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { ChartSpec } from '../../bench/charts.ts';
import { checkInvariants, INVARIANT_CHECKS, type InvariantSnapshot, type StoredRegistration } from '../support/invariants.ts';

const REPO_DIR = path.resolve(import.meta.dirname, '../..');
const NODE_BIN = path.join(REPO_DIR, 'node_modules/.bin/node');
// A bound, not a measure: a busy machine (shared cores) starts three services slowly.
const RUN_TIMEOUT_MS = 240_000;

type BenchRun = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** The environment of a user's shell: none of the test runner's or the test database's variables. */
function benchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('NODE_TEST') || name.startsWith('REGISTRAR_') || name === 'NODE_OPTIONS') continue;
    env[name] = value;
  }
  // Load shedding is not under test here: out of reach, whatever else runs on the machine.
  return { ...env, MAX_EVENT_LOOP_DELAY_MS: '60000', MAX_DATABASE_BACKLOG: '1000000' };
}

/**
 * Runs the bench; `interruptWhen` sends SIGINT once stderr matches it. On timeout: SIGTERM (the
 * bench cleans up), then SIGKILL.
 */
function runBench(args: string[], interruptWhen?: RegExp): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE_BIN, ['bench/main.ts', ...args], { cwd: REPO_DIR, env: benchEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (interruptWhen && !interrupted && interruptWhen.test(stderr)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
    }, RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function explain(run: BenchRun): string {
  return `exit ${run.code ?? run.signal}\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-4000)}`;
}

/** The bench's temporary directory, from its log line. */
function benchDir(run: BenchRun): string {
  const dir = /starting an embedded PostgreSQL in (\S+)/.exec(run.stderr)?.[1];
  assert.ok(dir, `the bench names its temporary directory\n${explain(run)}`);
  return dir;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

/** Processes whose command line mentions `text` (a postmaster runs as `postgres -D <dir>/db`). */
async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const commandLine = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.split('\0').join(' ').includes(text)) pids.push(Number(name));
  }
  return pids;
}

/** Nothing the bench started outlives it: no process on its directory, and no directory. */
async function assertNothingLeft(dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let pids = await processesMentioning(dir);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(200);
    pids = await processesMentioning(dir);
  }
  assert.deepEqual(pids, [], `processes still run on ${dir}`);
  assert.equal(await exists(dir), false, `${dir} is removed`);
}

async function assertReport(run: BenchRun, scenario: string, reportDir: string): Promise<string> {
  const file = /^Report: (.+\.html)$/m.exec(run.stdout)?.[1];
  assert.ok(file, `the report path is printed\n${explain(run)}`);
  assert.equal(path.dirname(file), reportDir);
  assert.match(path.basename(file), new RegExp(`^${scenario}-\\d{8}-\\d{6}(-\\d+)?\\.html$`));
  const html = await readFile(file, 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /<svg[\s>]/, 'no hand-drawn chart');
  assert.match(html, /<script>[^<]*uPlot/, 'uPlot inlined: the report is one standalone file');
  assert.doesNotMatch(html, /<script src=|<link [^>]*href="http/, 'nothing fetched from elsewhere');
  return html;
}

/** The charts' data in a report: every chart has a y label, a unit or a named axis, and series with labels. */
function chartsOf(html: string): ChartSpec[] {
  const specs = [...html.matchAll(/<script type="application\/json" class="chart-data">([^<]*)<\/script>/g)].map((m) => JSON.parse(m[1]!) as ChartSpec);
  for (const spec of specs) {
    assert.ok(spec.y.label.length > 0 && spec.series.length > 0 && spec.series.every((s) => s.label.length > 0), JSON.stringify(spec).slice(0, 300));
    assert.ok(spec.x.kind === 'category' || spec.x.label.length > 0, `${spec.title}: an x axis label`);
    assert.equal(spec.data.length, spec.series.length + 1, `${spec.title}: x and one column per series`);
  }
  return specs;
}

/** A progress line (done/total, elapsed or done in) under `label` on stderr. */
function assertProgress(run: BenchRun, label: string, total: number, unit: string): void {
  const pattern = new RegExp(`^\\[bench\\] ${label}: \\d+/${total} ${unit} \\(\\d+%\\), (done in|[\\d.]+ s elapsed)`, 'm');
  assert.match(run.stderr, pattern, `a progress line for ${label}\n${explain(run)}`);
}

let reportDir: string;

before(async () => {
  reportDir = await mkdtemp(path.join(tmpdir(), 'registrar-bench-reports-'));
});
after(async () => {
  await rm(reportDir, { recursive: true, force: true });
});

describe('npm run bench', { timeout: 1_500_000 }, () => {
  test('seed: the three models run, every email arrives, a report with timelines is written, nothing is left behind', async () => {
    const run = await runBench(['seed', '--n', '6', '--email-delay-ms', '100', '--workers', '2', '--report-dir', reportDir]);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /^Invariants: passed/m, explain(run));
    for (const model of ['1 sequential, email in request', '2 concurrent, email in request', '3 concurrent, email on the job queue, all workers']) {
      assert.match(run.stdout, new RegExp(`^${model} .* 6x201 +6/6$`, 'm'), `a row for model ${model}\n${explain(run)}`);
    }
    for (const model of [1, 2, 3]) {
      assertProgress(run, `model ${model}: registrations`, 6, 'answers');
      assertProgress(run, `model ${model}: emails`, 6, 'emails');
    }
    const html = await assertReport(run, 'seed', reportDir);
    const charts = chartsOf(html);
    assert.equal(charts.length, 4, 'a comparison chart and three timelines');
    assert.deepEqual(charts[0]!.x.categories, ['1 sequential, email in request', '2 concurrent, email in request', '3 concurrent, email on the job queue, all workers']);
    assert.equal(charts[0]!.y.unit, 'ms');
    for (const timeline of charts.slice(1)) {
      assert.equal(timeline.x.kind, 'ms');
      assert.deepEqual(timeline.series.map((s) => s.label), ['requests sent', 'answered 2xx', 'emails accepted by SMTP']);
      assert.deepEqual(timeline.data.slice(1).map((column) => column.at(-1)), [6, 6, 6], 'every request sent, answered 2xx, its email accepted');
    }
    // Opened from disk in a browser, nothing else: uPlot draws the four charts with their legends.
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`file://${/^Report: (.+\.html)$/m.exec(run.stdout)![1]}`);
      await page.waitForFunction(() => document.querySelectorAll('figure.chart .uplot canvas').length === 4, undefined, { timeout: 30_000 });
      const legends = await page.evaluate(() => [...document.querySelectorAll('figure.chart .u-legend')].map((l) => l.textContent ?? ''));
      assert.deepEqual(errors, []);
      assert.ok(legends[0]!.includes('last answer') && legends[0]!.includes('last email accepted'), legends[0]);
      assert.ok(legends.slice(1).every((l) => l.includes('answered 2xx') && l.includes('emails accepted by SMTP')), JSON.stringify(legends));
    } finally {
      await browser.close();
    }
    await assertNothingLeft(benchDir(run));
  });

  test('rush: throughput, latency, answers by status, and the invariants checked against the database', async () => {
    const run = await runBench(['rush', '--students', '300', '--courses', '5', '--concurrency', '32', '--hot-capacity', '20', '--report-dir', reportDir]);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /^Invariants: passed \(20 checks over 6 courses/m, explain(run));
    assert.match(run.stdout, /^ +306 +0 +\S+ m?s +\d+ \/s/m, 'all 306 requests answered, no network error');
    assert.match(run.stdout, /^201 created, waitlisted +50$/m, 'the hot course waitlist filled');
    assert.match(run.stdout, /^409 course-full +\d+$/m);
    assert.match(run.stdout, /^200 already registered \(duplicate\) +\d+$/m);
    assertProgress(run, 'rush', 306, 'answers');
    const html = await assertReport(run, 'rush', reportDir);
    assert.match(html, /Latency histogram/);
    assert.match(html, /Throughput over time/);
    const [histogram, throughput] = chartsOf(html);
    assert.equal(histogram!.x.kind, 'ms');
    assert.equal(histogram!.data[1]!.reduce((a, b) => (a ?? 0) + (b ?? 0), 0), 306, 'every answer in a bin');
    assert.equal(throughput!.y.unit, 'answers/s');
    await assertNothingLeft(benchDir(run));
  });

  test('rush --multi 30: single-course only and with requests for three courses, side by side, the invariants checked in both', async () => {
    const run = await runBench(['rush', '--multi', '30', '--students', '300', '--courses', '5', '--concurrency', '32', '--hot-capacity', '20', '--warmup', '20', '--email-timeout-ms', '0', '--report-dir', reportDir]);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /^single-course only +306 +0 +\d+ /m, explain(run));
    assert.match(run.stdout, /^30% ask for 3 courses at once +306 +[1-9]\d* +\d+ /m, explain(run));
    assert.match(run.stdout, /Multi-course throughput: \d+% of single-course/);
    assert.match(run.stdout, /^Invariants: passed/m);
    await assertNothingLeft(benchDir(run));
  });

  test('rush --hot-full --compare-db: the full course refuses, the freed-slot trials run, PostgreSQL alone beside the service', async () => {
    // A wide margin: the check must run and be reported here; its bound is not under test on a busy CI machine.
    const run = await runBench(['rush', '--hot-full', '--students', '300', '--concurrency', '32', '--warmup', '20', '--freed-slot-margin-ms', '5000', '--compare-db', '--report-dir', reportDir]);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /^Case --hot-full: /m, explain(run));
    assert.match(run.stdout, /^Target: >= 8,000 answers\/s\. Measured: [\d,]+ answers\/s: (met|missed) /m);
    assert.match(run.stdout, /^201 created, enrolled +100$/m, 'the preset: 100 seats, no waitlist');
    assert.match(run.stdout, /^409 course-full +200$/m);
    const trials = run.stdout.match(/^ +\d +(cancel \w+|capacity \d+ -> \d+) +\d+x409 +\d+ +\d+ +\S+ m?s +within bound$/gm) ?? [];
    assert.equal(trials.length, 5, `3 cancels and 2 capacity raises, each place taken by a new student\n${explain(run)}`);
    assert.match(run.stdout, /^Freed-slot check: passed \(5 trials, /m);
    assert.match(run.stdout, /^database only: statement-per-registration, 32 connections +300 +100 /m, 'the same work on PostgreSQL alone');
    assert.match(run.stdout, /^service \/ database +\S+x/m);
    assertProgress(run, 'database only', 300, 'registrations');
    // 100 seats, 5 places freed and taken, 10 of the 20 warm-up requests created (seats for half).
    assert.match(run.stdout, /^Invariants: passed \(20 checks over 2 courses, 115 rows, \d+ answers\)$/m, 'the freed-slot registrations are in the check');
    assert.match(run.stdout, /^Invariants of the database-only run: passed$/m);
    await assertNothingLeft(benchDir(run));
  });

  test('import: 1 thread and the pool each import the generated file, the outcome checked against the database', async () => {
    const run = await runBench(['import', '--rows', '2000', '--threads', '2', '--workers', '1', '--report-dir', reportDir]);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /^Checks: passed \(8 checks per model/m, explain(run));
    for (const [model, threads] of [['1 thread', 1], ['pool of 2 threads', 2]] as const) {
      // 2000 rows: 1980 students, 19 repeated (existing), 1 invalid (rejected).
      assert.match(run.stdout, new RegExp(`^${model} +${threads} +done +.* /s +\\d+\\.\\d\\dx +1980 +19 +1$`, 'm'), `a row for ${model}\n${explain(run)}`);
    }
    assert.doesNotMatch(run.stdout, /^FAIL /m);
    for (const model of ['1 thread', 'pool of 2 threads']) assertProgress(run, `${model}: import`, 2000, 'rows');
    const html = await assertReport(run, 'import', reportDir);
    assert.match(html, /Rows per second/);
    assert.match(html, /resident memory/);
    const units = chartsOf(html).map((c) => c.y.unit);
    assert.deepEqual(units, ['ms', 'rows/s', 'rows', 'MiB', 'MiB', 'ms']);
    await assertNothingLeft(benchDir(run));
  });

  test('queue: joins, held streams, reads, then the opening with bots: queue order, the random order from its seed, no bot registered, the invariants', async () => {
    const run = await runBench(['queue', '--students', '300', '--streams', '60', '--bots', '10', '--seats', '100', '--waitlist', '20', '--read-seconds', '1',
      '--first-poll-spread-ms', '1000', '--workers', '2', '--report-dir', reportDir]);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /^joins \(POST \/courses\/\{id\}\/queue\) +300 +300x201 /m, explain(run));
    assert.match(run.stdout, /^opening: admitted students register +120 +120x201 /m, 'every admitted student registered once: 100 seats and 20 waitlist places');
    assert.match(run.stdout, /^Target: 60 position streams held: 60 opened, 0 dropped, /m);
    assert.match(run.stdout, /^Registrations without admission: 0 of \d+ bot requests won anything \(\d+x403 not-admitted\)\.$/m);
    assert.match(run.stdout, /^Seats in queue order: 120 admissions checked against their rank, 0 out of order\.$/m);
    assert.match(run.stdout, /^Random order: the seed matches the SHA-256 shown before opening; 300 places re-ranked from sha256\(seed \|\| id\): 0 differ from the ranks used\. Joins: 0 answered places not stored\.$/m);
    assert.match(run.stdout, /^Places at the end: 120 registered, 180 sold-out, 0 expired, 0 waiting, 0 admitted\.$/m);
    assert.match(run.stdout, new RegExp(`^Invariants: passed \\(${INVARIANT_CHECKS.length} checks over 1 courses, 120 rows, 300 places, `, 'm'));
    assertProgress(run, 'queue: joins', 300, 'answers');
    const html = await assertReport(run, 'queue', reportDir);
    assert.match(html, /The opening over time/);
    assert.deepEqual(chartsOf(html).map((c) => c.y.unit), ['places', 'MiB']);
    await assertNothingLeft(benchDir(run));
  });

  test('Ctrl-C during a rush: exit 130, the service and PostgreSQL are stopped, the temporary directory removed', async () => {
    const run = await runBench(['rush', '--students', '20000', '--courses', '5', '--concurrency', '16', '--warmup', '0', '--report-dir', reportDir], /rush: \d+ requests/);
    assert.equal(run.code, 130, explain(run));
    assert.match(run.stderr, /interrupted/);
    await assertNothingLeft(benchDir(run));
  });

  test('a bad flag: exit 2 and a message naming it, before anything is started', async () => {
    const run = await runBench(['rush', '--students', 'many']);
    assert.equal(run.code, 2, explain(run));
    assert.match(run.stderr, /--students must be a whole number/);
    assert.doesNotMatch(run.stderr, /starting an embedded PostgreSQL/);
  });

  test('two preset cases at once: exit 2 and a message naming them, before anything is started', async () => {
    const run = await runBench(['rush', '--hot', '--spread']);
    assert.equal(run.code, 2, explain(run));
    assert.match(run.stderr, /choose one case: --hot, --spread were given together/);
    assert.doesNotMatch(run.stderr, /starting an embedded PostgreSQL/);
  });
});

describe('checkInvariants', () => {
  const registration = (id: string, courseId: string, status: StoredRegistration['status'], seq: number, waitlistPosition: number | null = null): StoredRegistration =>
    ({ id, courseId, emailKey: `${id}@example.org`, status, seq, waitlistPosition });

  /** A full course: 2 seats, 2 waitlisted at positions 1 and 2; every row answered 201. */
  function goodSnapshot(): InvariantSnapshot {
    const registrations = [
      registration('a', 'cs101', 'enrolled', 1),
      registration('b', 'cs101', 'enrolled', 2),
      registration('c', 'cs101', 'waitlisted', 3, 1),
      registration('d', 'cs101', 'waitlisted', 5, 2),
    ];
    return {
      courses: [{ id: 'cs101', capacity: 2, waitlistCapacity: 2, enrolled: 2, waitlisted: 2 }],
      registrations,
      answers: [
        ...registrations.map((r) => ({ course: r.courseId, emailKey: r.emailKey, status: 201, registrationId: r.id })),
        { course: 'cs101', emailKey: 'a@example.org', status: 200 },
        { course: 'cs101', emailKey: 'e@example.org', status: 409, problemType: '/problems/course-full' },
      ],
      expectFull: ['cs101'],
      emails: { events: 4, messageIds: ['<1>', '<2>', '<3>', '<4>'] },
    };
  }

  const checksFailed = (snapshot: InvariantSnapshot) => [...new Set(checkInvariants(snapshot).map((v) => v.check))];

  test('a good snapshot: no violation', () => {
    assert.deepEqual(checkInvariants(goodSnapshot()), []);
  });

  test('an enrolled counter that does not match the rows', () => {
    const snapshot = goodSnapshot();
    snapshot.courses[0]!.enrolled = 1;
    const violations = checkInvariants(snapshot);
    assert.ok(violations.some((v) => v.check === 'counters equal the rows stored' && v.subject === 'cs101' && /enrolled counter 1 != 2/.test(v.detail)), JSON.stringify(violations));
  });

  test('more enrolled than seats', () => {
    const snapshot = goodSnapshot();
    snapshot.courses[0]!.capacity = 1;
    assert.ok(checksFailed(snapshot).includes('enrolled <= capacity and waitlisted <= waitlistCapacity'));
  });

  test('two active registrations for one email', () => {
    const snapshot = goodSnapshot();
    snapshot.registrations[1]!.emailKey = 'a@example.org';
    assert.ok(checksFailed(snapshot).includes('one active registration per (course, email)'));
  });

  test('a gap in the waitlist positions', () => {
    const snapshot = goodSnapshot();
    snapshot.registrations[3]!.waitlistPosition = 3;
    assert.deepEqual(checksFailed(snapshot), ['waitlist positions 1..n in arrival order']);
  });

  test('a 201 answer whose registration is not stored, and a stored row nobody was told about', () => {
    const snapshot = goodSnapshot();
    snapshot.answers![0] = { ...snapshot.answers![0]!, registrationId: 'zz' };
    const violations = checkInvariants(snapshot).filter((v) => v.check === 'the 201 answers are exactly the rows stored');
    assert.equal(violations.length, 2, JSON.stringify(violations));
  });

  test('a 200 answer for a student who holds no active registration', () => {
    const snapshot = goodSnapshot();
    snapshot.answers!.push({ course: 'cs101', emailKey: 'nobody@example.org', status: 200 });
    assert.deepEqual(checksFailed(snapshot), ['every 200 answer is for a student holding an active registration']);
  });

  test('a course-full answer while a seat was free', () => {
    const snapshot = goodSnapshot();
    snapshot.courses[0]!.capacity = 3;
    assert.ok(checksFailed(snapshot).includes('nobody turned away (course-full) while a place was free'));
  });

  test('a request without an answer, or answered with a server error, fails the run; a 503 overloaded does not', () => {
    const lost = goodSnapshot();
    lost.answers!.push({ course: 'cs101', emailKey: 'f@example.org', status: 0 }, { course: 'cs101', emailKey: 'g@example.org', status: 502 });
    assert.deepEqual(checksFailed(lost), ['every request answered', 'no server error']);
    const shed = goodSnapshot();
    shed.answers!.push({ course: 'cs101', emailKey: 'h@example.org', status: 503, problemType: '/problems/overloaded' });
    assert.deepEqual(checkInvariants(shed), []);
  });

  test('an email sent twice, and one missing', () => {
    const twice = goodSnapshot();
    twice.emails = { events: 4, messageIds: ['<1>', '<2>', '<3>', '<4>', '<4>'] };
    assert.deepEqual(checksFailed(twice), ['every event emailed, each Message-ID once']);
    const missing = goodSnapshot();
    missing.emails = { events: 4, messageIds: ['<1>', '<2>', '<3>'] };
    assert.deepEqual(checksFailed(missing), ['every event emailed, each Message-ID once']);
  });
});
