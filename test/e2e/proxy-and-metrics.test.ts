// The service as started for real (supervisor, one HTTP worker, the job worker), TRUST_PROXY=true,
// RATE_LIMIT_PER_MINUTE=5, behind a real reverse proxy hop: a node:http proxy in this test that
// appends its peer's address to X-Forwarded-For as nginx's $proxy_add_x_forwarded_for does.
//   a) a client that forges X-Forwarded-For with random addresses is still one client: 5 of its
//      8 registrations get 201, the rest 429;
//   b) 200 concurrent /metrics scrapes share aggregations: at most one per interval
//      (registrar_metrics_aggregations_total counts them), none gathered before the burst.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { serverUrl } from '../support/database.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { parsePrometheusText } from '../support/prometheus-text.ts';
import { freePort, killProcessGroup, type ServiceProcess, spawnService, waitForHealth } from '../support/service-process.ts';

const LIMIT = 5;
const WINDOW_MS = 60_000;
const INTERVAL_MS = 1_000; // AGGREGATE_INTERVAL_MS
const SCRAPES = 200;

const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
const databaseName = `e2e_edge_${randomBytes(6).toString('hex')}`;
let dataDir: string;
let service: ServiceProcess | undefined;
let proxy: Server;
let direct: Client;
let viaProxy: Client;

/** A reverse proxy hop: forwards to the service, X-Forwarded-For extended with the peer's address. */
function startProxy(target: URL): Promise<Server> {
  const server = createServer(function forward(incoming, outgoing) {
    const peer = incoming.socket.remoteAddress ?? '';
    const forwardedFor = incoming.headers['x-forwarded-for'];
    const headers = { ...incoming.headers, 'x-forwarded-for': forwardedFor ? `${forwardedFor}, ${peer}` : peer };
    const upstream = request({ host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function randomAddress(): string {
  return Array.from({ length: 4 }, () => randomInt(1, 255)).join('.');
}

before(async () => {
  await admin.unsafe(`CREATE DATABASE ${databaseName}`);
  const databaseUrl = new URL(serverUrl());
  databaseUrl.pathname = `/${databaseName}`;
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-edge-'));
  const port = await freePort();
  service = spawnService({
    via: 'node',
    env: {
      DATABASE_URL: databaseUrl.href, WORKERS: '1', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      RATE_LIMIT_PER_MINUTE: String(LIMIT), TRUST_PROXY: 'true', LOG_LEVEL: 'warn',
    },
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHealth(baseUrl, { timeoutMs: 90_000, service });
  direct = new Client(baseUrl);
  proxy = await startProxy(new URL(baseUrl));
  viaProxy = new Client(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
});

after(async () => {
  proxy?.closeAllConnections();
  proxy?.close();
  killProcessGroup(service);
  await Promise.race([service?.exited, sleep(30_000, undefined, { ref: false })]);
  await admin.unsafe(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
  await rm(dataDir, { recursive: true, force: true });
});

describe('behind a proxy hop', { timeout: 240_000 }, () => {
  test('a) a forged X-Forwarded-For does not buy a fresh budget: 5 of 8 registrations get 201, the rest 429', async (t) => {
    const course = `edge-${randomBytes(4).toString('hex')}`;
    assert.equal((await direct.admin('POST', '/courses', { id: course, title: 'Edge', capacity: 100 })).status, 201);
    const left = WINDOW_MS - (Date.now() % WINDOW_MS);
    if (left < 20_000) await sleep(left + 250);
    const window = Math.floor(Date.now() / WINDOW_MS);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const forged = Array.from({ length: 1 + (i % 3) }, randomAddress).join(', ');
      const answer = await viaProxy.register({ name: `Spoof ${i}`, email: `spoof-${i}@example.org`, course }, { 'x-forwarded-for': forged });
      statuses.push(answer.status);
      if (answer.status === 429) assert.equal(answer.body.type, '/problems/rate-limited');
    }
    assert.equal(Math.floor(Date.now() / WINDOW_MS), window, 'the sequence ran in one rate-limit window');
    t.diagnostic(`8 registrations with forged X-Forwarded-For through the proxy: ${statuses.join(' ')}`);
    assert.deepEqual(statuses, [...Array(LIMIT).fill(201), ...Array(8 - LIMIT).fill(429)]);
  });

  test('b) 200 concurrent scrapes cost at most one aggregation per interval, each answer gathered after it was asked for', async (t) => {
    const aggregations = (text: string) => {
      const sample = parsePrometheusText(text).find((s) => s.name === 'registrar_metrics_aggregations_total');
      assert.ok(sample, 'registrar_metrics_aggregations_total is exposed');
      return sample.value;
    };
    const first = await direct.request('GET', '/metrics');
    assert.equal(first.status, 200);
    const before = aggregations(first.body);
    await sleep(INTERVAL_MS + 200); // the burst's first scrape starts an aggregation at once
    const startedAt = Date.now();
    const scrapes = await Promise.all(Array.from({ length: SCRAPES }, () => direct.request('GET', '/metrics')));
    const elapsedMs = Date.now() - startedAt;
    assert.ok(scrapes.every((s) => s.status === 200), `statuses: ${[...new Set(scrapes.map((s) => s.status))].join(', ')}`);
    const seen = new Set(scrapes.map((s) => aggregations(s.body)));
    assert.ok([...seen].every((value) => value > before), 'no scrape got the aggregate from before the burst');
    await sleep(INTERVAL_MS + 200);
    const during = aggregations((await direct.request('GET', '/metrics')).body) - before - 1;
    t.diagnostic(`${SCRAPES} concurrent scrapes in ${elapsedMs} ms: ${during} aggregation(s) (counter values seen: ${[...seen].join(', ')})`);
    // Aggregations start at least INTERVAL_MS apart, each after the last one ended.
    assert.ok(during >= 1 && during <= Math.floor(elapsedMs / INTERVAL_MS) + 1, `${during} aggregations for ${SCRAPES} scrapes in ${elapsedMs} ms`);
  });
});
