// A worker whose event loop stopped (SIGSTOP here; an endless loop or a stuck native call look
// the same from outside: no heartbeat) is killed by the supervisor once it has been silent for
// WORKER_LIVENESS_TIMEOUT_MS, and replaced; the service keeps answering, and the dashboard's
// restart list says why. Once for an HTTP worker, once for the job worker.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { ClusterView } from '../../src/observability/cluster-state.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { childrenOf } from '../support/processes.ts';
import {
  collectWorkerPids, freePort, isAlive, killProcessGroup, type ServiceProcess, spawnService, stopEmbeddedPostgres,
  stopProcess, tail, waitForHealth, waitForPostgresGone,
} from '../support/service-process.ts';

/** Long enough that the niced job worker, starved on a busy machine, is not killed before the test stops it. */
const LIVENESS_TIMEOUT_MS = 10_000;

let dataDir: string;
let service: ServiceProcess | undefined;
const stopped: number[] = [];

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-liveness-'));
});

after(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // killed by the supervisor, as it should be
    }
  }
  killProcessGroup(service);
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

/** The dashboard's live view (its event stream), read until `ok` holds. */
async function dashboardView(baseUrl: string, ok: (view: ClusterView) => boolean, timeoutMs: number): Promise<ClusterView> {
  const login = await fetch(`${baseUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TEST_ADMIN_TOKEN }) });
  assert.equal(login.status, 204);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const deadline = Date.now() + timeoutMs;
  let last: ClusterView | undefined;
  while (Date.now() < deadline) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(1, Math.min(10_000, deadline - Date.now())));
    try {
      const answer = await fetch(`${baseUrl}/dashboard/events`, { headers: { cookie }, signal: abort.signal });
      assert.equal(answer.status, 200);
      let text = '';
      const reader = answer.body!.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const frame = text.slice(0, end);
          text = text.slice(end + 2);
          if (!frame.startsWith('data: ')) continue;
          last = (JSON.parse(frame.slice(6)) as { cluster: ClusterView }).cluster;
          if (ok(last)) return last;
        }
      }
    } catch {
      // the stream ended (its worker was the one replaced, or our timer): open another
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    await sleep(200);
  }
  throw new Error(`the dashboard did not show what was expected within ${timeoutMs} ms; last view's restarts: ${JSON.stringify(last?.restarts)}`);
}

/** The supervisor's workers once all 3 run (2 HTTP workers and the job worker). */
async function currentWorkers(supervisorPid: number, httpWorkers: number): Promise<number[]> {
  let children: number[] = [];
  for (let i = 0; i < 300 && children.length < httpWorkers + 1; i++) {
    children = await childrenOf(supervisorPid);
    if (children.length < httpWorkers + 1) await sleep(200);
  }
  return children;
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  assert.equal(isAlive(pid), false, `process ${pid} was killed; output:\n${tail(service!.output())}`);
}

test('a worker that stops answering its supervisor is killed and replaced, HTTP worker and job worker alike', async () => {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  service = spawnService({
    via: 'node',
    env: { WORKERS: '2', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0', WORKER_LIVENESS_TIMEOUT_MS: String(LIVENESS_TIMEOUT_MS) },
  });
  await waitForHealth(baseUrl, { timeoutMs: 120_000, service });
  const supervisorPid = service.pid;
  const httpPids = await collectWorkerPids(baseUrl, (pids) => pids.size === 2);

  // An HTTP worker stops.
  const [httpVictim] = [...httpPids];
  process.kill(httpVictim!, 'SIGSTOP');
  stopped.push(httpVictim!);
  await waitUntilGone(httpVictim!, 60_000);
  const others = [...httpPids].filter((pid) => pid !== httpVictim);
  await collectWorkerPids(baseUrl, (pids) => [...pids].some((pid) => !httpPids.has(pid)), 60_000);
  await waitForHealth(baseUrl, { timeoutMs: 30_000, service });
  assert.ok(others.every((pid) => isAlive(pid)), 'the other HTTP worker lives on');

  // The job worker stops. Its pid is looked up now: one found earlier may have been replaced since.
  const current = await currentWorkers(supervisorPid, 2);
  const answering = (pids: Set<number>) => current.filter((pid) => pids.has(pid));
  const http = answering(await collectWorkerPids(baseUrl, (pids) => answering(pids).length === 2, 60_000));
  const [jobPid] = current.filter((pid) => !http.includes(pid));
  assert.ok(jobPid !== undefined, `a job worker among ${current.join(', ')}`);
  process.kill(jobPid, 'SIGSTOP');
  stopped.push(jobPid);
  await waitUntilGone(jobPid, 60_000);
  const view = await dashboardView(baseUrl, (v) => [httpVictim, jobPid].every((pid) => v.restarts.some((r) => r.pid === pid)) && v.workers.some((w) => w.role === 'jobs' && w.pid !== jobPid), 60_000);
  for (const [pid, role] of [[httpVictim, 'http'], [jobPid, 'jobs']] as const) {
    const event = view.restarts.find((r) => r.pid === pid)!;
    assert.equal(event.role, role);
    assert.equal(event.signal, 'SIGKILL');
    assert.match(event.reason ?? '', /^unresponsive for \d+ s: killed$/, JSON.stringify(event));
    assert.match(service.output(), new RegExp(`worker ${pid} sent nothing for \\d+ ms`));
  }
  await waitForHealth(baseUrl, { timeoutMs: 30_000, service });

  const exit = await stopProcess(service, { signal: 'SIGTERM', timeoutMs: 60_000 });
  assert.deepEqual(exit, { code: 0, signal: null }, tail(service.output()));
  assert.deepEqual(await waitForPostgresGone(dataDir), []);
  service = undefined;
});
