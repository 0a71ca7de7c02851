// Beyond one machine, with a pooler: two instances whose HTTP workers reach PostgreSQL through one
// PgBouncer in transaction pooling mode (fewer server connections than clients, so transactions
// of one client run on different server connections), while their job workers connect directly.
// A rush over both (a hot course far over capacity, duplicates, Idempotency-Key replays, a
// roomy course), then a cancel and its promotion, must keep every invariant and email every event once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createCleanup } from '../support/cleanup.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { type Answer, Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants, checkInvariants, type ObservedAnswer, readInvariantSnapshot } from '../support/invariants.ts';
import { findPgbouncer, type Pgbouncer, startPgbouncer } from '../support/pgbouncer.ts';
import { freePort, killProcessGroup, type ServiceProcess, spawnService, stopProcess, tail, waitForHealth } from '../support/service-process.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';

const STARTUP_TIMEOUT_MS = 60_000;
/** Server connections PgBouncer opens: fewer than the two HTTP workers' pools (10 each). */
const SERVER_POOL_SIZE = 6;
const CAPACITY = 40;
const WAITLIST_CAPACITY = 15;
const UNIQUE_STUDENTS = 240;
const DUPLICATED_STUDENTS = 40;
const KEYED_STUDENTS = 30;
const ROOMY_STUDENTS = 100;
const NEWCOMERS = 20;

type Instance = { name: string; baseUrl: string; client: Client; dataDir: string; service: ServiceProcess | undefined };
type Sent = { instance: Instance; body: { name: string; email: string; course: string }; answer: Answer };

const binary = await findPgbouncer();
const cleanup = createCleanup((line) => process.stderr.write(`${line}\n`));
let db: TestDatabase;
let smtp: TestSmtpServer;
let pgbouncer: Pgbouncer;
const instances: Instance[] = [];

const emailKey = (email: string) => email.trim().toLowerCase();
const observed = (sent: Sent): ObservedAnswer => ({
  course: sent.body.course,
  emailKey: emailKey(sent.body.email),
  status: sent.answer.status,
  ...(sent.answer.status === 201 ? { registrationId: sent.answer.body.id } : {}),
  ...(sent.answer.status >= 400 ? { problemType: sent.answer.body?.type } : {}),
});
const send = async (instance: Instance, body: Sent['body'], headers?: Record<string, string>): Promise<Sent> =>
  ({ instance, body, answer: await instance.client.register(body, headers) });

before(async () => {
  if (binary === undefined) return;
  db = await createTestDatabase(4);
  cleanup.add('test database', () => db.drop());
  smtp = await startSmtpServer();
  cleanup.add('smtp server', () => smtp.stop());
  pgbouncer = await startPgbouncer(binary, db.url, { poolSize: SERVER_POOL_SIZE });
  cleanup.add('pgbouncer', () => pgbouncer.stop());
  for (const name of ['a', 'b']) {
    const port = await freePort();
    const instance: Instance = { name, baseUrl: `http://127.0.0.1:${port}`, client: new Client(`http://127.0.0.1:${port}`), dataDir: await mkdtemp(path.join(tmpdir(), `registrar-e2e-pgbouncer-${name}-`)), service: undefined };
    cleanup.add(`instance ${name}`, async () => {
      killProcessGroup(instance.service);
      await Promise.race([instance.service?.exited, sleep(30_000, undefined, { ref: false })]);
      await rm(instance.dataDir, { recursive: true, force: true });
    });
    instances.push(instance);
  }
});

after(() => cleanup.run());

describe('two instances, HTTP workers through PgBouncer (transaction pooling)', {
  timeout: 600_000,
  skip: binary === undefined ? 'pgbouncer is not installed: apt-get install pgbouncer (.ci/run installs it)' : false,
}, () => {
  test('both start with HTTP_DATABASE_URL through PgBouncer and DATABASE_URL direct', async () => {
    for (const instance of instances) {
      instance.service = spawnService({
        via: 'node',
        env: {
          DATABASE_URL: db.url,
          HTTP_DATABASE_URL: pgbouncer.url,
          WORKERS: '1',
          PORT: new URL(instance.baseUrl).port,
          DATA_DIR: instance.dataDir,
          ADMIN_TOKEN: TEST_ADMIN_TOKEN,
          SMTP_URL: smtp.url,
          // The whole rush comes from one client address; rate limiting is not under test here.
          RATE_LIMIT_PER_MINUTE: '0',
        },
      });
    }
    await Promise.all(instances.map(async (instance) => {
      await instance.service!.waitForOutput(/Registrar is running: 1 HTTP worker\b.*HTTP workers through HTTP_DATABASE_URL/, STARTUP_TIMEOUT_MS);
      await waitForHealth(instance.baseUrl, { timeoutMs: STARTUP_TIMEOUT_MS, service: instance.service! });
    }));
  });

  test('a rush over both, then a cancel and its promotion: every invariant, every email once', async (t) => {
    if (instances.some((instance) => instance.service === undefined)) return t.skip('the instances did not start');
    const [a, b] = instances as [Instance, Instance];
    const hot = await newCourse(a.client, { capacity: CAPACITY, waitlistCapacity: WAITLIST_CAPACITY });
    const roomy = await newCourse(b.client, { capacity: ROOMY_STUDENTS });
    const other = (i: number) => (i % 2 === 0 ? a : b);

    // Unique students alternate between the instances; a duplicated student goes to both (to B
    // in other case, with spaces: the same student); a keyed student sends one request with one
    // Idempotency-Key to both.
    const rush: (() => Promise<Sent>)[] = [];
    for (let i = 0; i < UNIQUE_STUDENTS; i++) rush.push(() => send(other(i), student(hot, i, 'one')));
    for (let i = 0; i < ROOMY_STUDENTS; i++) rush.push(() => send(other(i + 1), student(roomy, i, 'roomy')));
    for (let i = 0; i < DUPLICATED_STUDENTS; i++) {
      const body = student(hot, i, 'both');
      rush.push(() => send(a, body), () => send(b, { ...body, email: `  ${body.email.toUpperCase()} ` }));
    }
    const keyedRush: (() => Promise<Sent[]>)[] = [];
    for (let i = 0; i < KEYED_STUDENTS; i++) {
      const body = student(hot, i, 'keyed');
      const headers = { 'idempotency-key': `${hot}-keyed-${i}` };
      // 409 conflict: the other request with this key is still being handled; a retry gets its answer.
      const settle = async (instance: Instance) => {
        let sent = await send(instance, body, headers);
        for (let attempt = 0; attempt < 100 && sent.answer.body?.type === '/problems/conflict'; attempt++) {
          await sleep(50);
          sent = await send(instance, body, headers);
        }
        return sent;
      };
      keyedRush.push(() => Promise.all([settle(a), settle(b)]));
    }
    const order = [...rush.map((run) => ({ run, keyed: false })), ...keyedRush.map((run) => ({ run, keyed: true }))].sort(() => Math.random() - 0.5);
    const results = await Promise.all(order.map((item) => item.run()));
    const sent = results.flat();
    const counts: Record<string, number> = {};
    for (const s of sent) counts[`${s.instance.name}:${s.answer.status}`] = (counts[`${s.instance.name}:${s.answer.status}`] ?? 0) + 1;
    t.diagnostic(`${sent.length} answers: ${JSON.stringify(counts)}`);
    // While the pools are warm: PgBouncer's clients right after the rush.
    const clients = await pgbouncer.show('CLIENTS');
    assert.deepEqual(sent.filter((s) => ![200, 201, 409].includes(s.answer.status)).map((s) => `${s.answer.status} ${JSON.stringify(s.answer.body)}`), []);

    // A keyed pair: the same 201 (token included) twice, or course-full twice.
    const keyedPairs = results.filter((r): r is Sent[] => Array.isArray(r));
    assert.equal(keyedPairs.length, KEYED_STUDENTS);
    for (const [first, second] of keyedPairs as [Sent, Sent][]) {
      assert.equal(first.answer.status, second.answer.status, `${first.body.email}: ${JSON.stringify([first.answer.body, second.answer.body])}`);
      if (first.answer.status === 201) assert.deepEqual(second.answer.body, first.answer.body, `${first.body.email}: the replay is the original 201`);
      else assert.equal(first.answer.body.type, '/problems/course-full');
    }
    const created = sent.filter((s) => s.answer.status === 201 && s.body.course === hot);
    const hotRows = new Set(created.map((s) => s.answer.body.id as string));
    assert.equal(hotRows.size, CAPACITY + WAITLIST_CAPACITY, 'every seat and waitlist place handed out once');
    assert.equal(sent.filter((s) => s.answer.status === 201 && s.body.course === roomy).length, ROOMY_STUDENTS);

    // A cancel on B frees a seat: the first waitlisted student takes it, and the waitlist place
    // that frees goes to one newcomer of a rush over both.
    const enrolled = created.find((s) => s.answer.body.status === 'enrolled' && s.body.email.startsWith('one'))!;
    const firstWaitlisted = created.find((s) => s.answer.body.waitlistPosition === 1)!;
    const cancelled = await b.client.request('DELETE', `/registrations/${enrolled.answer.body.id}`, { token: enrolled.answer.body.manageToken });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.status, 'cancelled');
    const promoted = await a.client.request('GET', `/registrations/${firstWaitlisted.answer.body.id}`, { token: firstWaitlisted.answer.body.manageToken });
    assert.deepEqual([promoted.body.status, promoted.body.waitlistPosition], ['enrolled', null], 'position 1 took the freed seat');
    const newcomers = await Promise.all(Array.from({ length: NEWCOMERS }, (_, i) => send(other(i), student(hot, i, 'late'))));
    const placed = newcomers.filter((s) => s.answer.status === 201);
    assert.deepEqual(placed.map((s) => [s.answer.body.status, s.answer.body.waitlistPosition]), [['waitlisted', WAITLIST_CAPACITY]], 'one newcomer took the freed waitlist place');
    for (const s of newcomers.filter((s) => s.answer.status !== 201)) assert.equal(s.answer.body.type, '/problems/course-full');

    // Every event emailed: the job workers (connected directly) drain the queue.
    const [state] = await eventually(
      () => db.sql<{ events: number; sent: number; jobs: number }[]>`
        SELECT (SELECT count(*) FROM registration_events)::int AS events,
               (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent,
               (SELECT count(*) FROM graphile_worker._private_jobs)::int AS jobs`,
      (rows) => rows[0]!.jobs === 0 && rows[0]!.sent === rows[0]!.events && smtp.messages.length >= rows[0]!.events,
      120_000);
    const deliveries = await db.sql<{ message_id: string }[]>`SELECT message_id FROM email_deliveries ORDER BY message_id`;
    assert.deepEqual(smtp.messages.map((m) => m.messageId).sort(), deliveries.map((d) => d.message_id), 'the messages received are the deliveries recorded, each once');

    // Every invariant, over the stored rows, every answer (a keyed pair counts once: its replay
    // names the same row) and every email.
    const answers = [...sent.filter((s) => !keyedPairs.some((pair) => pair[1] === s)), ...newcomers].map(observed);
    const snapshot = await db.sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', (tx) => readInvariantSnapshot(tx));
    const violations = checkInvariants({ ...snapshot, answers, expectFull: [hot], emails: { events: state!.events, messageIds: smtp.messages.map((m) => m.messageId) } });
    assert.deepEqual(violations, [], violations.map((v) => `${v.check}: ${v.subject}: ${v.detail}`).join('\n'));
    await assertInvariants(db.sql);

    // The HTTP workers' transactions went through PgBouncer, in transaction pooling, over at most
    // its server connections; the job workers are not among its clients.
    const pools = (await pgbouncer.show('POOLS')).filter((pool) => pool['database'] !== 'pgbouncer');
    assert.deepEqual(pools.map((pool) => pool['pool_mode']), ['transaction']);
    const names = clients.map((client) => String(client['application_name'] ?? ''));
    assert.ok(names.filter((name) => name.startsWith('registrar-http-')).length > SERVER_POOL_SIZE, `more HTTP worker clients than server connections: ${names.join(', ')}`);
    assert.deepEqual(names.filter((name) => name.startsWith('registrar-jobs-')), []);
    const servers = (await pgbouncer.show('SERVERS')).filter((server) => server['database'] !== 'pgbouncer');
    assert.ok(servers.length <= SERVER_POOL_SIZE, `${servers.length} server connections`);
    const [stats] = (await pgbouncer.show('STATS')).filter((row) => row['database'] === new URL(db.url).pathname.slice(1));
    assert.ok(Number(stats?.['total_xact_count']) > 0, JSON.stringify(stats));
    const direct = await db.sql<{ name: string }[]>`SELECT application_name AS name FROM pg_stat_activity WHERE application_name LIKE 'registrar-jobs-%'`;
    assert.equal(direct.length > 0, true, 'the job workers connect to PostgreSQL directly');
    t.diagnostic(`pgbouncer: ${names.length} clients, ${servers.length} server connections, ${String(stats?.['total_xact_count'])} transactions`);
  });

  test('SIGTERM stops both instances cleanly', async (t) => {
    if (instances.some((instance) => instance.service === undefined)) return t.skip('the instances did not start');
    const exits = await Promise.all(instances.map((instance) => stopProcess(instance.service!, { signal: 'SIGTERM', timeoutMs: 60_000 })));
    for (const [i, exit] of exits.entries()) {
      assert.deepEqual(exit, { code: 0, signal: null }, `instance ${instances[i]!.name}:\n${tail(instances[i]!.service!.output())}\npgbouncer:\n${tail(pgbouncer.output())}`);
    }
  });
});
