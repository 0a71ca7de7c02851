// SIGTERM at each point of start-up (SPEC: a stop leaves nothing running): right after spawn,
// while initdb runs, while PostgreSQL starts, around the migrations, and with the workers forked
// but not yet listening. Each time the supervisor exits cleanly and neither a postmaster on the
// DATA_DIR nor any process of the service is left.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import {
  freePort, killProcessGroup, type ServiceProcess, spawnService, stopEmbeddedPostgres, stopProcess, tail, waitForPostgresGone,
} from '../support/service-process.ts';
import { firstChild, processesOf, waitForProcessesGone } from '../support/processes.ts';

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
  // The migrations' window is a few tens of milliseconds on a cluster already made: a signal
  // at several moments in it meets the migration's connection in its different states (the
  // server stopping under a query, under the transaction, under the connection's end).
  for (const delayMs of [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 40]) {
    await t.test(`as the migrations run (${delayMs} ms in)`, (t) => stopDuringStartup(t, async (s) => {
      await s.waitForOutput(/embedded PostgreSQL listening/, 120_000);
      await sleep(delayMs);
    }));
  }
  await t.test('with workers forked, not yet listening', (t) => stopDuringStartup(t, async (s) => {
    await firstChild(s.pid, 120_000, () => tail(s.output()));
  }));
  // And the start after all that is a normal one, on the cluster those stops left.
  await t.test('a full start afterwards', (t) => stopDuringStartup(t, (s) => s.waitForOutput(/Registrar is running/, 180_000).then(() => undefined)));
  assert.deepEqual(await processesOf(dataDir), []);
});

// pg_ctl start may take longer than a stop's bound (crash recovery after a kill -9 can take
// minutes). pg_ctl held with SIGSTOP stands in for that: the stop gives up waiting, forces the
// database down (its force hook), and exits; no postmaster may finish starting after it.
test('a stop past its bound while pg_ctl start runs leaves no PostgreSQL behind', async (t) => {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const started = spawnService({ via: 'node', env: { WORKERS: '1', PORT: String(await freePort()), DATA_DIR: dataDir, RATE_LIMIT_PER_MINUTE: '0', SHUTDOWN_TIMEOUT_MS: '0' } });
    service = started;
    await started.waitForOutput(/starting the embedded PostgreSQL/, 120_000);
    let pgCtl: number | undefined;
    for (let i = 0; i < 500 && pgCtl === undefined && !/embedded PostgreSQL listening/.test(started.output()); i++) {
      pgCtl = (await processesOf(dataDir)).find((p) => /pg_ctl .* start /.test(p.commandLine))?.pid;
      if (pgCtl === undefined) await sleep(10);
    }
    if (pgCtl !== undefined) {
      try {
        process.kill(pgCtl, 'SIGSTOP');
      } catch {
        pgCtl = undefined; // it returned between the look and the signal
      }
    }
    if (pgCtl === undefined) {
      // pg_ctl returned before it could be held: stop this one normally and try again.
      t.diagnostic(`attempt ${attempt}: pg_ctl start was done before it could be held`);
      await stopProcess(started, { signal: 'SIGTERM', timeoutMs: 90_000 });
      await waitForProcessesGone(dataDir, 30_000);
      continue;
    }
    try {
      const exit = await stopProcess(started, { signal: 'SIGTERM', timeoutMs: 90_000 });
      const output = started.output();
      assert.deepEqual(exit, { code: 0, signal: null }, tail(output));
      assert.match(output, /stopping embedded PostgreSQL took over \d+ ms; forcing it and moving on/, tail(output));
    } finally {
      try {
        process.kill(pgCtl, 'SIGCONT');
      } catch {
        // gone already
      }
    }
    assert.deepEqual(await waitForPostgresGone(dataDir, 60_000), [], `no PostgreSQL on ${dataDir}/db; output:\n${tail(started.output())}`);
    assert.deepEqual(await waitForProcessesGone(dataDir, 60_000), [], 'no process of the service');
    service = undefined;
    return;
  }
  t.skip('pg_ctl start always finished before it could be held');
});
