// SIGTERM at each point of start-up (SPEC: a stop leaves nothing running): right after spawn,
// while initdb runs, while PostgreSQL starts, around the migrations, and with the workers forked
// but not yet listening. Each time the supervisor exits cleanly and neither a postmaster on the
// DATA_DIR nor any process of the service is left.
import assert from 'node:assert/strict';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import {
  freePort, killProcessGroup, type ServiceProcess, spawnService, stopEmbeddedPostgres, stopProcess, tail, waitForPostgresGone,
} from '../support/service-process.ts';
import { processesOf, waitForProcessesGone } from '../support/terminal.ts';

let dataDir: string;
let service: ServiceProcess | undefined;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-startup-stop-'));
});

after(async () => {
  killProcessGroup(service);
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

/** The supervisor's children (its workers) once one exists. */
async function firstChild(pid: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
      const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
      if (stat && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid && cmdline.includes('src/main.ts')) return Number(name);
    }
    await sleep(50);
  }
  throw new Error(`no worker of ${pid} within ${timeoutMs} ms; output:\n${tail(service!.output())}`);
}

/** Starts the service, waits for `when`, sends SIGTERM, and checks that nothing is left. */
async function stopDuringStartup(t: { diagnostic(message: string): void }, when: (started: ServiceProcess) => Promise<void>, options: { mayDieBeforeHandlers?: boolean } = {}): Promise<void> {
  const started = spawnService({ via: 'node', env: { WORKERS: '2', PORT: String(await freePort()), DATA_DIR: dataDir, RATE_LIMIT_PER_MINUTE: '0' } });
  service = started;
  await when(started);
  const exit = await stopProcess(started, { signal: 'SIGTERM', timeoutMs: 90_000 });
  const output = started.output();
  t.diagnostic(`exit ${JSON.stringify(exit)}; last line: ${tail(output.trim(), 1)}`);
  const killedBeforeHandlers = options.mayDieBeforeHandlers === true && exit.signal === 'SIGTERM' && output.trim() === '';
  if (!killedBeforeHandlers) {
    assert.deepEqual(exit, { code: 0, signal: null }, `a clean exit; output:\n${tail(output)}`);
    assert.match(output, /SIGTERM: stopping gracefully/);
    assert.match(output, /"msg":"stopped"/);
  }
  assert.doesNotMatch(output, /could not start|exiting now/, tail(output));
  assert.deepEqual(await waitForPostgresGone(dataDir, 30_000), [], `no PostgreSQL on ${dataDir}/db; output:\n${tail(output)}`);
  assert.deepEqual(await waitForProcessesGone(dataDir, 30_000), [], `no process of the service; output:\n${tail(output)}`);
  service = undefined;
}

test('SIGTERM at any point of start-up stops cleanly and leaves nothing running', async (t) => {
  await t.test('right after spawn', (t) => stopDuringStartup(t, async () => undefined, { mayDieBeforeHandlers: true }));
  await t.test('while initdb creates the cluster', (t) => stopDuringStartup(t, (s) => s.waitForOutput(/creating a PostgreSQL cluster/, 120_000).then(() => undefined)));
  await t.test('while PostgreSQL starts', (t) => stopDuringStartup(t, (s) => s.waitForOutput(/starting the embedded PostgreSQL/, 120_000).then(() => undefined)));
  await t.test('as the migrations run', (t) => stopDuringStartup(t, (s) => s.waitForOutput(/embedded PostgreSQL listening/, 120_000).then(() => undefined)));
  await t.test('with workers forked, not yet listening', (t) => stopDuringStartup(t, async (s) => {
    await firstChild(s.pid, 120_000);
  }));
  // And the start after all that is a normal one, on the cluster those stops left.
  await t.test('a full start afterwards', (t) => stopDuringStartup(t, (s) => s.waitForOutput(/Registrar is running/, 180_000).then(() => undefined)));
  assert.deepEqual(await processesOf(dataDir), []);
});
