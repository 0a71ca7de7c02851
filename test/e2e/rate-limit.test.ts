// Per-client rate limits, counted in PostgreSQL across processes (RATE_LIMIT_PER_MINUTE=30):
//   a) one instance with two HTTP workers: requests on fresh connections (so the kernel spreads
//      them over both workers) are admitted up to the limit, plus at most a small overshoot that
//      the 100 ms flush allows, and refused with 429 problems carrying Retry-After after that;
//   b) two instances (one HTTP worker each) on one database: a client that used its budget on
//      instance A is refused by instance B, which never saw it before; the same for the routes
//      guarded by manage tokens (GET /registrations/{id} with wrong tokens).
// The limit is per fixed one-minute window: each sequence starts early enough in a window to
// end in it (the service and this test read the same clock).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { serverUrl } from '../support/database.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import {
  collectWorkerPids, freePort, killProcessGroup, type ServiceProcess, spawnService, tail, waitForHealth,
} from '../support/service-process.ts';

const LIMIT = 30;
const WINDOW_MS = 60_000;
/** Requests are sent one at a time, with a pause after every BURST of them, so flushes happen. */
const BURST = 5;
const PAUSE_MS = 400;
/**
 * How far over the limit two processes may admit, sending one request at a time. Each process
 * sends its counts every 100 ms and learns the totals (its own buckets' and every bucket over the
 * limit) in the same round trip, so once the limit is crossed, every process knows within about
 * two flush periods plus two round trips (~200-400 ms). Only the requests sent in that time can
 * overshoot: the rest of the burst in which the limit was crossed, and at worst the next burst
 * if the pause (PAUSE_MS) was not enough on a loaded machine: 2 x BURST.
 */
const SLACK = 2 * BURST;
const STARTUP_TIMEOUT_MS = 90_000;

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: any };
type Instance = { name: string; baseUrl: string; dataDir: string; databaseUrl: string; workers: number; service: ServiceProcess | undefined };

const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
const databases: string[] = [];
const instances: Instance[] = [];

/** One request on a connection of its own (no keep-alive): the kernel picks a worker for each. */
function fresh(baseUrl: string, method: string, urlPath: string, options: { body?: unknown; token?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { connection: 'close' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (options.token) headers['authorization'] = `Bearer ${options.token}`;
    const req = request(`${baseUrl}${urlPath}`, { method, agent: false, headers, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let body: unknown = text;
        if ((res.headers['content-type'] ?? '').includes('json') && text) body = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Waits, if need be, for the next window, so that `needMs` from now stay in one window. */
async function startOfRoom(needMs: number): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < needMs) await sleep(left + 250);
}

function windowOf(time: number): number {
  return Math.floor(time / WINDOW_MS);
}

function assertRateLimited(reply: Reply, what: string): void {
  assert.equal(reply.status, 429, `${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
  assert.match(String(reply.headers['content-type']), /^application\/problem\+json/, what);
  assert.equal(reply.body.type, '/problems/rate-limited', what);
  assert.equal(reply.body.status, 429);
  const retryAfter = Number(reply.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${what}: Retry-After ${reply.headers['retry-after']} is the seconds left in the window`);
}

async function newDatabase(): Promise<string> {
  const name = `e2e_rl_${randomBytes(6).toString('hex')}`;
  // Empty: the instances migrate it themselves.
  await admin.unsafe(`CREATE DATABASE ${name}`);
  databases.push(name);
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.href;
}

async function newInstance(name: string, databaseUrl: string, workers: number): Promise<Instance> {
  const port = await freePort();
  return { name, baseUrl: `http://127.0.0.1:${port}`, dataDir: await mkdtemp(path.join(tmpdir(), `registrar-rl-${name}-`)), databaseUrl, workers, service: undefined };
}

function start(instance: Instance): ServiceProcess {
  instance.service = spawnService({
    via: 'node',
    env: {
      DATABASE_URL: instance.databaseUrl,
      WORKERS: String(instance.workers),
      PORT: new URL(instance.baseUrl).port,
      DATA_DIR: instance.dataDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      RATE_LIMIT_PER_MINUTE: String(LIMIT),
      LOG_LEVEL: 'warn',
    },
  });
  return instance.service;
}

async function createCourse(instance: Instance, capacity: number): Promise<string> {
  const id = `rl-${randomBytes(4).toString('hex')}`;
  const created = await fresh(instance.baseUrl, 'POST', '/courses', { token: TEST_ADMIN_TOKEN, body: { id, title: `Course ${id}`, capacity } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return id;
}

/** `count` requests, one at a time, pausing after every BURST; returns every reply in order. */
async function sequence(count: number, send: (i: number) => Promise<Reply>): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = 0; i < count; i++) {
    replies.push(await send(i));
    if ((i + 1) % BURST === 0) await sleep(PAUSE_MS);
  }
  return replies;
}

before(async () => {
  const [single, shared] = [await newDatabase(), await newDatabase()];
  instances.push(await newInstance('one', single, 2), await newInstance('a', shared, 1), await newInstance('b', shared, 1));
  // All three start at once (A and B migrate their shared database in turn).
  await Promise.all(instances.map(async (instance) => waitForHealth(instance.baseUrl, { timeoutMs: STARTUP_TIMEOUT_MS, service: start(instance) })));
});

after(async () => {
  for (const instance of instances) killProcessGroup(instance.service);
  await Promise.race([Promise.all(instances.map((instance) => instance.service?.exited)), sleep(30_000, undefined, { ref: false })]);
  for (const name of databases) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
  for (const instance of instances) await rm(instance.dataDir, { recursive: true, force: true });
});

describe('rate limits shared through PostgreSQL', { timeout: 300_000 }, () => {
  test('a) two workers of one instance: at least the limit, at most the limit plus the flush overshoot; 429 with Retry-After', async (t) => {
    const one = instances[0]!;
    const workers = await collectWorkerPids(one.baseUrl, (pids) => pids.size >= 2);
    assert.equal(workers.size, 2, 'fresh connections reach both workers');
    const course = await createCourse(one, 1000);

    const total = 2 * LIMIT;
    await startOfRoom(20_000);
    const startedAt = Date.now();
    const replies = await sequence(total, (i) => fresh(one.baseUrl, 'POST', '/register', { body: { name: `Client ${i}`, email: `rl-a-${i}@example.org`, course } }));
    assert.equal(windowOf(Date.now()), windowOf(startedAt), 'the sequence ran in one window');

    const admitted = replies.filter((r) => r.status !== 429);
    const refused = replies.filter((r) => r.status === 429);
    t.diagnostic(`a: ${total} requests one at a time over two workers: ${admitted.length} admitted, ${refused.length} refused with 429 (limit ${LIMIT}, slack ${SLACK}); first 429 at request ${replies.findIndex((r) => r.status === 429) + 1}`);
    assert.ok(admitted.every((r) => r.status === 201), `admitted requests register: ${JSON.stringify(admitted.map((r) => r.status))}`);
    assert.ok(admitted.length >= LIMIT, `${admitted.length} admitted: the limit is ${LIMIT}`);
    assert.ok(admitted.length <= LIMIT + SLACK, `${admitted.length} admitted: more than ${LIMIT} + ${SLACK}`);
    for (const reply of refused) assertRateLimited(reply, 'a refused request');
    // Once refused, refused for the rest of the window.
    const firstRefused = replies.findIndex((r) => r.status === 429);
    assert.ok(replies.slice(firstRefused).every((r) => r.status === 429), `no request admitted after the first 429: ${replies.map((r) => r.status).join(' ')}`);
    // A refused request changed nothing: exactly the admitted ones are stored.
    const listed = await fresh(one.baseUrl, 'GET', `/courses/${course}`);
    assert.equal(listed.body.enrolled, admitted.length);
  });

  test('b) two instances on one database: the budget used on A is refused on B, for register and manage-token routes', async (t) => {
    const [, a, b] = instances as [Instance, Instance, Instance];
    const course = await createCourse(a, 1000);

    await startOfRoom(15_000);
    const startedAt = Date.now();
    const onA = await sequence(LIMIT, (i) => fresh(a.baseUrl, 'POST', '/register', { body: { name: `Client ${i}`, email: `rl-b-${i}@example.org`, course } }));
    assert.deepEqual(onA.map((r) => r.status), Array(LIMIT).fill(201), 'the first LIMIT requests on A are admitted');
    await sleep(400); // > 300 ms: A has flushed its counts and B has read the totals
    const onB = await fresh(b.baseUrl, 'POST', '/register', { body: { name: 'Client B', email: 'rl-b-on-b@example.org', course } });
    assertRateLimited(onB, 'the first request of this client on instance B');
    assertRateLimited(await fresh(a.baseUrl, 'POST', '/register', { body: { name: 'Client A', email: 'rl-b-again@example.org', course } }), 'one more on A');
    assert.equal(windowOf(Date.now()), windowOf(startedAt), 'the sequence ran in one window');
    const shown = await fresh(b.baseUrl, 'GET', `/courses/${course}`);
    assert.equal(shown.body.enrolled, LIMIT, 'the refused requests registered nobody');

    // A manage token cannot be guessed at speed: wrong tokens use up the client's budget there
    // too (a budget of its own, apart from registering), on either instance.
    const target = onA[0]!.body as { id: string; manageToken: string };
    await startOfRoom(15_000);
    const manageStartedAt = Date.now();
    const guesses = await sequence(LIMIT, (i) => fresh(a.baseUrl, 'GET', `/registrations/${target.id}`, { token: `wrong-token-${i}-${randomBytes(8).toString('hex')}` }));
    assert.deepEqual(guesses.map((r) => r.status), Array(LIMIT).fill(401), 'wrong tokens within the budget: 401');
    await sleep(400);
    const guessOnB = await fresh(b.baseUrl, 'GET', `/registrations/${target.id}`, { token: 'one-more-wrong-token' });
    assertRateLimited(guessOnB, 'a wrong token on B after LIMIT on A');
    // Even the right token waits for the next window: the limit is per client, not per token.
    assertRateLimited(await fresh(a.baseUrl, 'GET', `/registrations/${target.id}`, { token: target.manageToken }), 'the right token on A, over the budget');
    assert.equal(windowOf(Date.now()), windowOf(manageStartedAt), 'the sequence ran in one window');
    t.diagnostic(`b: ${LIMIT} registrations on A, then 429 on B (Retry-After ${onB.headers['retry-after']} s); ${LIMIT} wrong manage tokens on A (401), then 429 on B (Retry-After ${guessOnB.headers['retry-after']} s)`);
    for (const instance of [a, b]) assert.doesNotMatch(instance.service!.output(), /rate-limit counts not saved/, tail(instance.service!.output()));
  });
});
