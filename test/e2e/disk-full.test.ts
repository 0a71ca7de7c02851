// The disk under DATA_DIR fills up in the middle of a rush of registrations, for real: DATA_DIR
// is a small tmpfs of its own (the embedded PostgreSQL's data and WAL on it), and a filler file
// takes every free byte while the rush goes on; the postmaster is killed while the disk is full,
// so the supervisor's watchdog must start it again with no room (it retries until it can).
// Meanwhile every answer is 201/200 or 503 `overloaded` with Retry-After, never a 500 and never
// a dead service. Once the filler is gone, registrations succeed again without anyone's help,
// every registration answered 2xx is stored, the invariants hold, and every registration event
// still gets its email (jobs that met the full disk were retried, none failed for good). A CSV
// upload (POST /imports) while the disk is full is 503 `overloaded` too; once space is freed an
// upload is accepted and its import completes.
// Skipped when tmpfs cannot be mounted (not root).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { Agent } from 'undici';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy, failureReason, isSettled, type Outcome, resendUntilSettled, send, until } from '../support/rush.ts';
import {
  embeddedDatabaseUrl, findSupervisorPid, freePort, getHealth, isAlive, killProcessGroup, type ServiceProcess, spawnService,
  stopEmbeddedPostgres, stopProcess, tail, waitForHealth,
} from '../support/service-process.ts';

const run = promisify(execFile);

/**
 * The tmpfs: a fresh cluster with the migrations takes about 40 MiB (24 MiB of databases, one
 * 16 MiB WAL segment); the rest is room for the first seconds of the rush, then the filler's.
 * Once the filler is gone, its room is all there is for what comes after: the email records of
 * every registration made (the emails wait while the disk is full), the rest of the rush, and
 * WAL that PostgreSQL recycles only at a checkpoint. A slow machine makes more registrations
 * before the fill than it has emailed, so the room must be generous, or the disk fills a second
 * time and nothing can recover (the test would then measure its own tmpfs).
 */
const TMPFS_SIZE = '192m';
/** Clients registering at once, each in a loop, one new student per request. */
const RUSH_CLIENTS = 150;
/** How long the rush goes on before the disk fills, and with the disk full. */
const BEFORE_FULL_MS = 3_000;
const FULL_MS = 20_000;
/** When, after the disk filled, the postmaster is killed (SIGKILL). */
const KILL_POSTMASTER_AFTER_MS = 8_000;
/** Recovery, once space is freed: generous, the machine is shared and slow. */
const RECOVERY_TIMEOUT_MS = 180_000;
const EMAIL_DRAIN_TIMEOUT_MS = 240_000;
const RETRY_OPTIONS = { concurrency: 16, timeoutMs: 120_000, pauseMs: 1_000 };
const COURSE = 'disk-full';
/** The imports' course: its registrations are not the rush's, whose rows are checked one by one. */
const IMPORT_COURSE = 'disk-full-import';
const IMPORT_TIMEOUT_MS = 180_000;

type Body = { name: string; email: string; course: string };
type Phase = 'before' | 'full' | 'after';
type Sent = { body: Body; key: string; phase: Phase; outcome: Outcome };

let mountDir: string | undefined;
let mounted = false;
let mountRefusal = '';
let dataDir: string;
let baseUrl: string;
let smtp: TestSmtpServer | undefined;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
const rushDispatcher = new Agent({ connections: RUSH_CLIENTS, pipelining: 1 });
const calmDispatcher = new Agent({ connections: 16, pipelining: 1, keepAliveTimeout: 1_000 });
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

before(async () => {
  mountDir = await mkdtemp(path.join(tmpdir(), 'registrar-disk-full-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', mountDir]);
    mounted = true;
  } catch (error) {
    mountRefusal = String((error as { stderr?: string }).stderr || error).trim();
    return;
  }
  dataDir = path.join(mountDir, 'data');
  await mkdir(dataDir);
  smtp = await startSmtpServer({});
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  service = spawnService({
    via: 'node',
    env: {
      WORKERS: '1',
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      SMTP_URL: smtp.url,
      // The whole rush comes from one client address: not what is under test here.
      RATE_LIMIT_PER_MINUTE: '0',
    },
  });
  await waitForHealth(baseUrl, { timeoutMs: 120_000, service });
  supervisorPid = await findSupervisorPid(service);
});

after(async () => {
  await rushDispatcher.destroy().catch(() => undefined);
  await calmDispatcher.destroy().catch(() => undefined);
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid, timeoutMs: 60_000 }).catch(() => killProcessGroup(service));
  killProcessGroup(service);
  if (mounted) {
    await stopEmbeddedPostgres(dataDir).catch(() => undefined);
    await run('umount', ['-l', mountDir!]).catch(() => undefined);
  }
  await smtp?.stop();
  if (mountDir) await rmdir(mountDir).catch(() => rm(mountDir!, { recursive: true, force: true }));
});

/** A calm request, retried (bounded) while the service is recovering: a network failure or a 503. */
async function calm(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  let last = '';
  for (let attempt = 0; attempt < 120; attempt++) {
    const outcome = await send(baseUrl, method, urlPath, { dispatcher: calmDispatcher, headers: admin, body, timeoutMs: 10_000 });
    if (outcome.ok && outcome.answer.status !== 503) return outcome.answer;
    last = outcome.ok ? `503 ${JSON.stringify(outcome.answer.body)}` : failureReason(outcome.error);
    await sleep(500);
  }
  throw new Error(`${method} ${urlPath}: no answer but ${last}`);
}

/** POST /imports with a CSV of `count` new students of IMPORT_COURSE; the answer, never a throw. */
async function uploadImport(tag: string, count: number): Promise<Outcome> {
  const csv = ['name,email,course', ...Array.from({ length: count }, (_, i) => `Imported ${tag} ${i},import-${tag}-${i}@example.org,${IMPORT_COURSE}`)].join('\n') + '\n';
  const startedAt = performance.now();
  try {
    const response = await fetch(`${baseUrl}/imports`, {
      method: 'POST', headers: { ...admin, 'content-type': 'text/csv' }, body: csv, dispatcher: calmDispatcher, signal: AbortSignal.timeout(30_000),
    } as RequestInit);
    const text = await response.text();
    const body: unknown = (response.headers.get('content-type') ?? '').includes('json') && text ? JSON.parse(text) : text;
    return { ok: true, answer: { status: response.status, headers: response.headers, body }, elapsedMs: performance.now() - startedAt };
  } catch (caught) {
    const error = caught instanceof Error ? caught : new Error(String(caught));
    return { ok: false, error, timedOut: error.name === 'TimeoutError', elapsedMs: performance.now() - startedAt };
  }
}

/** Writes zeros into `file` until the file system says ENOSPC; returns the bytes written. */
async function fillUp(file: string): Promise<number> {
  const handle = await open(file, 'a');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) {
      try {
        const { bytesWritten } = await handle.write(chunk);
        written += bytesWritten;
        if (bytesWritten < chunk.length) return written;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return written;
        throw error;
      }
    }
  } finally {
    await handle.close();
  }
}

test('the disk fills during a rush: 503 overloaded, never 500; back by itself once space is freed; nothing answered 2xx lost', { timeout: 900_000 }, async (t) => {
  if (!mounted) {
    t.skip(`cannot mount a tmpfs here (needs root): ${mountRefusal}`);
    return;
  }
  const created = await calm('POST', '/courses', { id: COURSE, title: 'Disk full', capacity: 1_000_000, waitlistCapacity: 0 });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const importCourse = await calm('POST', '/courses', { id: IMPORT_COURSE, title: 'Disk full imports', capacity: 1_000, waitlistCapacity: 0 });
  assert.equal(importCourse.status, 201, JSON.stringify(importCourse.body));

  const sent: Sent[] = [];
  let phase: Phase = 'before';
  let stop = false;
  let next = 0;
  const clients = Array.from({ length: RUSH_CLIENTS }, async () => {
    while (!stop) {
      const n = next++;
      const body = { name: `Student ${n}`, email: `s${n}@example.org`, course: COURSE };
      const startedIn = phase;
      const outcome = await send(baseUrl, 'POST', '/register', { dispatcher: rushDispatcher, body });
      sent.push({ body, key: body.email, phase: startedIn, outcome });
      if (!outcome.ok) await sleep(100); // a refused connection comes back at once: no busy loop
    }
  });
  const createdIn = (p: Phase) => sent.filter((s) => s.phase === p && s.outcome.ok && s.outcome.answer.status === 201).length;

  try {
    await sleep(BEFORE_FULL_MS);
    assert.ok(createdIn('before') > 0, `registrations before the disk fills: ${JSON.stringify(countBy(sent, statusOf))}`);

    // Fill the disk, and keep it full: whatever PostgreSQL frees (a WAL segment, a temporary
    // file), the filler takes next.
    phase = 'full';
    const filler = path.join(mountDir!, 'filler');
    const pidFile = path.join(dataDir, 'db', 'postmaster.pid');
    let postmaster: number | undefined;
    let postmasterWasDown = false;
    let filled = await fillUp(filler);
    const fullSince = Date.now();
    // An upload while the disk is full: no room for the file (ENOSPC), so 503 with Retry-After.
    const fullUpload = await uploadImport('full', 200);
    assert.ok(fullUpload.ok, `the upload during the full disk got no answer: ${fullUpload.ok ? '' : failureReason(fullUpload.error)}`);
    assert.equal(fullUpload.answer.status, 503, JSON.stringify(fullUpload.answer.body));
    assert.equal((fullUpload.answer.body as { type?: string }).type, '/problems/overloaded');
    assert.ok(Number(fullUpload.answer.headers.get('retry-after')) >= 1, 'the upload\'s 503 carries Retry-After');
    while (Date.now() - fullSince < FULL_MS) {
      await sleep(250);
      filled += await fillUp(filler);
      // PostgreSQL PANICs and restarts when it cannot write its WAL; whether that happens in a
      // given run depends on where the WAL segment stood. The hard case for certain: the
      // postmaster dies while the disk is full, and the supervisor's watchdog must start it
      // again on a disk with no room (crash recovery writes a checkpoint), retrying until it can.
      // No pid file: the postmaster is down already (a PANIC), which is the same hard case.
      if (postmaster === undefined && !postmasterWasDown && Date.now() - fullSince >= KILL_POSTMASTER_AFTER_MS) {
        const pidText = await readFile(pidFile, 'utf8').catch(() => undefined);
        if (pidText === undefined) {
          postmasterWasDown = true;
        } else {
          postmaster = Number(pidText.split('\n')[0]);
          try {
            process.kill(postmaster, 'SIGKILL');
          } catch {
            postmasterWasDown = true; // it died between the pid file's read and the kill
          }
        }
      }
    }
    const duringFull = sent.filter((s) => s.phase === 'full');
    t.diagnostic(`disk full for ${FULL_MS} ms (filler ${Math.round(filled / 2 ** 20)} MiB): ${JSON.stringify(countBy(duringFull, statusOf))}`);
    assert.ok(duringFull.some((s) => statusOf(s) !== '201'), 'the full disk was felt: some registration was refused');
    assert.ok(postmasterWasDown || (postmaster !== undefined && !isAlive(postmaster)), 'the postmaster was down or killed while the disk was full');

    // Free the space: registrations must succeed again, with no one restarting anything.
    phase = 'after';
    await rm(filler);
    const freedAt = Date.now();
    await until(async () => createdIn('after'), (count) => count >= RUSH_CLIENTS, 'registrations created again after the space was freed', RECOVERY_TIMEOUT_MS, 250);
    t.diagnostic(`space freed: ${RUSH_CLIENTS} registrations created again within ${Date.now() - freedAt} ms`);
    // Recovery is shown: the rush ends here, so what it writes after the disk was freed stays
    // bounded whatever the machine's speed.
    stop = true;
    await Promise.all(clients);
    assert.match(service!.output(), /the embedded PostgreSQL is back/);
    const restarted = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    assert.ok(restarted !== postmaster && isAlive(restarted), `a new postmaster runs (${restarted}, killed ${postmaster})`);

    // With room again, an upload is accepted and its import completes.
    const accepted = await until(() => uploadImport('after', 200), (o) => o.ok && o.answer.status !== 503, 'an upload accepted after the space was freed', RECOVERY_TIMEOUT_MS, 1_000);
    assert.ok(accepted.ok && accepted.answer.status === 202, accepted.ok ? `${accepted.answer.status} ${JSON.stringify(accepted.answer.body)}` : failureReason(accepted.error));
    const importId = (accepted.answer.body as { id: string }).id;
    const finished = await until(() => calm('GET', `/imports/${importId}`), (a) => ['done', 'failed'].includes(a.body.status), 'the import after the full disk ends', IMPORT_TIMEOUT_MS, 500);
    assert.equal(finished.body.status, 'done', JSON.stringify(finished.body));
    assert.deepEqual({ rows: finished.body.rows, created: finished.body.created, rejected: finished.body.rejected }, { rows: 200, created: 200, rejected: 0 });
  } finally {
    stop = true;
    await Promise.all(clients);
  }
  assert.ok(service!.isRunning(), `the service is still running; output:\n${tail(service!.output())}`);
  assert.ok(isAlive(supervisorPid!), 'the supervisor is still running');
  t.diagnostic(`rush: ${JSON.stringify(countBy(sent, (s) => `${s.phase} ${statusOf(s)}`))}`);

  // Only documented answers; a 503 is `overloaded` with Retry-After.
  const answers = sent.flatMap((s) => (s.outcome.ok ? [{ s, answer: s.outcome.answer }] : []));
  const unexpected = answers.filter(({ answer }) => ![200, 201, 409, 503].includes(answer.status));
  assert.deepEqual(unexpected.map(({ answer }) => `${answer.status} ${JSON.stringify(answer.body)}`).slice(0, 5), [], `output:\n${tail(service!.output(), 30)}`);
  for (const { answer } of answers) {
    if (answer.status === 409) assert.fail(`a 409 with a million seats: ${JSON.stringify(answer.body)}`);
    if (answer.status === 503) {
      assert.equal(answer.body.type, '/problems/overloaded', JSON.stringify(answer.body));
      assert.ok(Number(answer.headers.get('retry-after')) >= 1, 'a 503 carries Retry-After');
    }
  }
  assert.deepEqual(sent.filter((s) => !s.outcome.ok && s.outcome.timedOut).map((s) => s.key), [], 'a request had no answer within the service\'s 30 s deadline');

  // Every request that got a 503 (or lost its connection) is sent again until it gets a real
  // answer: the same student gets one registration, never a second.
  const { settled, unsettled, rounds } = await resendUntilSettled(sent.filter((s) => !isSettled(s.outcome)),
    (s) => send(baseUrl, 'POST', '/register', { dispatcher: calmDispatcher, body: s.body, timeoutMs: 15_000 }), RETRY_OPTIONS);
  assert.equal(unsettled.length, 0, `${unsettled.length} requests still without a real answer after ${rounds} rounds: ${JSON.stringify(countBy(unsettled, answerOf))}; ${await diskUse()}`);
  const all = [...sent.filter((s) => isSettled(s.outcome)), ...settled].map((s) => ({ key: s.key, answer: (s.outcome as Outcome & { ok: true }).answer }));
  assert.deepEqual(Object.keys(countBy(all, (a) => a.answer.status)).filter((status) => !['200', '201'].includes(status)), [], JSON.stringify(countBy(all, (a) => a.answer.status)));

  const sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 2, onnotice: () => {}, connect_timeout: 10 });
  try {
    const stored = await until(() => sql<{ id: string; email_key: string; status: string }[]>`SELECT id, email_key, status FROM registrations WHERE course_id = ${COURSE}`, () => true, 'the registrations');
    const storedByKey = new Map(stored.map((row) => [row.email_key, row]));
    assert.equal(storedByKey.size, stored.length, 'one registration per student');
    const answeredKeys = new Set<string>();
    for (const { key, answer } of all) {
      const row = storedByKey.get(key);
      assert.ok(row, `${key}: answered ${answer.status}, but no registration is stored`);
      // 201: this request made it; 200: an earlier attempt of the same student did (its answer was a 503 or lost).
      if (answer.status === 201) assert.equal(row.id, answer.body.id, `${key}: answered 201 with ${answer.body.id}, stored ${row.id}`);
      else assert.equal(answer.body.alreadyRegistered, true, JSON.stringify(answer.body));
      assert.equal(row.status, 'enrolled');
      answeredKeys.add(key);
    }
    assert.equal(all.filter((a) => a.answer.status === 201).length, new Set(all.filter((a) => a.answer.status === 201).map((a) => a.key)).size, 'no student created twice');
    // Every stored row belongs to a student who got a 2xx: nothing half-made by the full disk.
    assert.deepEqual(stored.map((row) => row.email_key).sort(), [...answeredKeys].sort());
    await assertInvariants(sql);

    // Every registration event still gets its email; none failed for good.
    const [state] = await until(
      () => sql<{ events: number; sent: number; failed: number; jobs: number; failedJobs: number }[]>`
        SELECT (SELECT count(*) FROM registration_events)::int AS events,
               (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent,
               (SELECT count(*) FROM email_deliveries WHERE status = 'failed')::int AS failed,
               (SELECT count(*) FROM graphile_worker._private_jobs)::int AS jobs,
               (SELECT count(*) FROM graphile_worker._private_jobs WHERE attempts >= max_attempts)::int AS "failedJobs"`,
      (rows) => (rows[0]!.jobs === 0 && rows[0]!.sent + rows[0]!.failed === rows[0]!.events) || rows[0]!.failedJobs > 0,
      'every email sent and recorded', EMAIL_DRAIN_TIMEOUT_MS, 500).catch(async (error: Error) => {
      throw new Error(`${error.message}; ${await diskUse()}; the service's log:\n${tail(service!.output(), 20)}`);
    });
    t.diagnostic(`emails: ${JSON.stringify(state)}; the SMTP server received ${smtp!.messages.length} messages`);
    assert.equal(state!.failedJobs, 0, 'no job failed for good');
    assert.equal(state!.failed, 0, 'no email failed for good');
    assert.equal(state!.sent, state!.events);
    const messageIds = new Set(smtp!.messages.map((m) => m.messageId));
    assert.ok(messageIds.size >= state!.events, `${messageIds.size} distinct messages for ${state!.events} events`);
  } finally {
    await sql.end({ timeout: 5 });
  }

  // The database's own account of the episode, for whoever reads the run.
  const postgresLog = await readFile(path.join(dataDir, 'db', 'postgres.log'), 'utf8').catch(() => '');
  const panics = postgresLog.split('\n').filter((line) => /PANIC|No space left/.test(line)).length;
  t.diagnostic(await diskUse());
  t.diagnostic(`postgres.log: ${panics} lines with PANIC or "No space left"; the supervisor restarted PostgreSQL ${(service!.output().match(/starting it again/g) ?? []).length} times`);
  const output = service!.output();
  const seen = Object.fromEntries(Object.entries(NOTABLE_LINES).map(([name, pattern]) => [name, (output.match(pattern) ?? []).length]));
  t.diagnostic(`the service's log (its tail): ${JSON.stringify(seen)}; 503 details: ${JSON.stringify(countBy(answers.filter(({ answer }) => answer.status === 503), ({ answer }) => answer.body.detail))}`);
  assert.equal((await getHealth(baseUrl)).status, 200);
});

/** What the service logs about the episode, counted for the test's diagnostics. */
const NOTABLE_LINES: Record<string, RegExp> = {
  outOfResources: /database out of disk space or memory/g,
  unavailable: /database unavailable/g,
  unhandled: /unhandled error/g,
  postgresRestarts: /the embedded PostgreSQL is not running; starting it again/g,
  postgresRestartFailures: /restarting PostgreSQL failed/g,
  workerDeaths: /worker died; replacing it/g,
};

/** The space used on the tmpfs, and by PostgreSQL's WAL, for the diagnostics. */
async function diskUse(): Promise<string> {
  const used = (dir: string) => run('du', ['-sm', dir]).then(({ stdout }) => `${stdout.split('\t')[0]} MiB`, () => '?');
  return `the tmpfs (${TMPFS_SIZE}) holds ${await used(mountDir!)}, of which WAL ${await used(path.join(dataDir, 'db', 'pg_wal'))}`;
}

/** The status and problem detail of an outcome, or its network failure. */
function answerOf(s: Sent): string {
  return s.outcome.ok ? `${s.outcome.answer.status} ${(s.outcome.answer.body as { detail?: string }).detail ?? ''}` : failureReason(s.outcome.error);
}

function statusOf(s: Sent): string {
  return s.outcome.ok ? String(s.outcome.answer.status) : failureReason(s.outcome.error);
}
