// Beyond one machine: two instances (each a supervisor with its own HTTP worker) sharing nothing
// but one PostgreSQL. They start at once on an empty database, so both try to migrate it (the
// advisory lock makes them take turns), then a rush split across both, with the same students
// sent to both, must end exactly as if one instance had served it, and a waiting room ticked by
// both job workers admits each place once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { connectDatabase, type Sql } from '../../src/db/database.ts';
import { serverUrl } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { type Answer, Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import {
  freePort,
  killProcessGroup,
  REPO_DIR,
  type ServiceProcess,
  spawnService,
  stopProcess,
  tail,
  waitForHealth,
} from '../support/service-process.ts';

const STARTUP_TIMEOUT_MS = 60_000;
const CAPACITY = 40;
const WAITLIST_CAPACITY = 15;
const UNIQUE_STUDENTS = 200;
const DUPLICATED_STUDENTS = 50;

type Instance = { name: string; baseUrl: string; client: Client; dataDir: string; service: ServiceProcess | undefined };

const databaseName = `e2e_${randomBytes(6).toString('hex')}`;
let admin: postgres.Sql;
let databaseUrl: string;
let sql: Sql | undefined;
const instances: Instance[] = [];

async function newInstance(name: string): Promise<Instance> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  return { name, baseUrl, client: new Client(baseUrl), dataDir: await mkdtemp(path.join(tmpdir(), `registrar-e2e-${name}-`)), service: undefined };
}

function startInstance(instance: Instance): ServiceProcess {
  instance.service = spawnService({
    via: 'node',
    env: {
      DATABASE_URL: databaseUrl,
      WORKERS: '1',
      PORT: new URL(instance.baseUrl).port,
      // Nothing in it is shared: with DATABASE_URL and ADMIN_TOKEN set, it only keeps local files.
      DATA_DIR: instance.dataDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      // The whole rush comes from one client address; rate limiting is not under test here.
      RATE_LIMIT_PER_MINUTE: '0',
    },
  });
  return instance.service;
}

function countBy<T>(items: T[], key: (item: T) => string | number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

before(async () => {
  admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  // Empty, not cloned from the migrated template: the instances migrate it themselves.
  await admin.unsafe(`CREATE DATABASE ${databaseName}`);
  const url = new URL(serverUrl());
  url.pathname = `/${databaseName}`;
  databaseUrl = url.href;
  instances.push(await newInstance('a'), await newInstance('b'));
});

after(async () => {
  for (const instance of instances) killProcessGroup(instance.service);
  await Promise.race([Promise.all(instances.map((instance) => instance.service?.exited)), sleep(30_000, undefined, { ref: false })]);
  await sql?.end({ timeout: 5 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
  for (const instance of instances) await rm(instance.dataDir, { recursive: true, force: true });
});

describe('two instances on one PostgreSQL', { timeout: 600_000 }, () => {
  test('both start at once on an empty database; the migrations are applied once', async () => {
    const services = instances.map(startInstance);
    await Promise.all(instances.map(async (instance) => {
      const service = instance.service!;
      await service.waitForOutput(/Registrar is running: 1 HTTP worker\b.*external PostgreSQL/, STARTUP_TIMEOUT_MS);
      await waitForHealth(instance.baseUrl, { timeoutMs: STARTUP_TIMEOUT_MS, service });
    }));

    // One instance applied them all under the lock; the other, after waiting its turn, found none to apply.
    const applying = services.filter((service) => /"msg":"migrations applied"/.test(service.output()));
    assert.equal(applying.length, 1, `exactly one instance applied the migrations:\n${services.map((s) => tail(s.output(), 10)).join('\n---\n')}`);
    sql = connectDatabase(databaseUrl, { max: 4, applicationName: 'registrar-e2e' });
    const files = (await readdir(path.join(REPO_DIR, 'src/db/migrations'))).filter((file) => /^\d{4}_.+\.sql$/.test(file)).sort();
    const applied = await sql<{ name: string }[]>`SELECT name FROM registrar_migrations ORDER BY name`;
    assert.deepEqual(applied.map((row) => row.name), files);
  });

  test('a rush split across both, the same students sent to both: exact counts, one registration per student', async (t) => {
    if (sql === undefined) return t.skip('the instances did not start');
    const [a, b] = instances as [Instance, Instance];
    const course = await newCourse(a.client, { capacity: CAPACITY, waitlistCapacity: WAITLIST_CAPACITY });
    assert.equal((await b.client.request('GET', `/courses/${course}`)).status, 200, 'B sees the course A created');

    // Unique students alternate between the instances; each duplicated student goes to both,
    // to B spelled in other case and with spaces around (the same student per SPEC).
    const requests: { instance: Instance; email: string; send: () => Promise<Answer> }[] = [];
    for (let i = 0; i < UNIQUE_STUDENTS; i++) {
      const instance = i % 2 === 0 ? a : b;
      const body = student(course, i, 'one');
      requests.push({ instance, email: body.email, send: () => instance.client.register(body) });
    }
    for (let i = 0; i < DUPLICATED_STUDENTS; i++) {
      const body = student(course, i, 'both');
      requests.push({ instance: a, email: body.email, send: () => a.client.register(body) });
      requests.push({ instance: b, email: body.email, send: () => b.client.register({ ...body, email: `  ${body.email.toUpperCase()} ` }) });
    }
    // Interleaved, so duplicates and newcomers arrive together rather than in blocks.
    requests.sort(() => Math.random() - 0.5);
    const answers = await Promise.all(requests.map(async (request) => ({ ...request, answer: await request.send() })));

    const statuses = countBy(answers, (r) => r.answer.status);
    t.diagnostic(`answers: ${JSON.stringify(statuses)}; by instance: ${JSON.stringify(countBy(answers, (r) => `${r.instance.name}:${r.answer.status}`))}`);
    assert.deepEqual(Object.keys(statuses).filter((s) => !['200', '201', '409'].includes(s)), [], JSON.stringify(statuses));
    for (const { answer } of answers.filter((r) => r.answer.status === 409)) assert.equal(answer.body.type, '/problems/course-full');

    // Exactly every seat and every waitlist place handed out once, across both instances.
    const created = answers.filter((r) => r.answer.status === 201);
    assert.equal(created.length, CAPACITY + WAITLIST_CAPACITY);
    assert.equal(created.filter((r) => r.answer.body.status === 'enrolled').length, CAPACITY);
    const positions = created.filter((r) => r.answer.body.status === 'waitlisted').map((r) => r.answer.body.waitlistPosition as number);
    assert.deepEqual(positions.sort((x, y) => x - y), Array.from({ length: WAITLIST_CAPACITY }, (_, i) => i + 1));

    // A duplicated student: one 201 and one 200 with that same registration, or two course-full.
    const byEmail = new Map<string, typeof answers>();
    for (const r of answers) byEmail.set(r.email, [...(byEmail.get(r.email) ?? []), r]);
    let placedDuplicates = 0;
    for (let i = 0; i < DUPLICATED_STUDENTS; i++) {
      const pair = byEmail.get(student(course, i, 'both').email)!;
      const kinds = pair.map((r) => r.answer.status).sort();
      if (kinds[0] === 409) {
        assert.deepEqual(kinds, [409, 409], `both-${i}: ${kinds}`);
        continue;
      }
      assert.deepEqual(kinds, [200, 201], `both-${i}: ${kinds}`);
      const first = pair.find((r) => r.answer.status === 201)!.answer.body;
      const second = pair.find((r) => r.answer.status === 200)!.answer.body;
      assert.deepEqual(Object.keys(second).sort(), ['alreadyRegistered', 'course', 'email'], `both-${i}: the 200 shows nothing stored`);
      assert.equal(second.email.toLowerCase(), first.email.toLowerCase(), `both-${i}: the 200 is for the student the 201 created`);
      placedDuplicates += 1;
    }
    assert.equal(statuses[200] ?? 0, placedDuplicates, 'a 200 only for a duplicated student who holds a place');
    assert.equal(statuses[409], requests.length - created.length - placedDuplicates);

    // The database agrees: counters equal rows, one active registration per student, one event each.
    await assertInvariants(sql);
    const [stored] = await sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
    assert.deepEqual({ ...stored }, { enrolled: CAPACITY, waitlisted: WAITLIST_CAPACITY });
    const rows = await sql<{ id: string }[]>`SELECT id FROM registrations WHERE course_id = ${course}`;
    assert.deepEqual(rows.map((row) => row.id).sort(), created.map((r) => r.answer.body.id as string).sort(), 'the rows are exactly the registrations answered 201');
    const [events] = await sql<{ created: number; reminders: number }[]>`
      SELECT count(*) FILTER (WHERE kind <> 'reminder')::int AS created, count(*) FILTER (WHERE kind = 'reminder')::int AS reminders
      FROM registration_events WHERE course_id = ${course}`;
    assert.equal(events?.created, CAPACITY + WAITLIST_CAPACITY, 'one event (one email) per registration');
    assert.equal(events?.reminders, placedDuplicates, 'one reminder per duplicate answered 200');
  });

  test('a waiting room across both: both job workers tick, each place admitted once, in rank order, then sold out', async (t) => {
    if (sql === undefined) return t.skip('the instances did not start');
    const db = sql;
    const [a, b] = instances as [Instance, Instance];
    const seats = 30;
    const course = await newCourse(a.client, { capacity: seats, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'random' } });
    const joined = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const instance = i % 2 === 0 ? a : b;
      const email = `queued${i}@example.org`;
      const answer = await instance.client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${i}`, email } });
      assert.equal(answer.status, 201, `${JSON.stringify(answer.body)}\n${tail(instance.service!.output(), 20)}`);
      return { email, id: answer.body.id as string, token: answer.body.queueToken as string, other: instance === a ? b : a };
    }));
    assert.equal((await b.client.admin('PATCH', `/courses/${course}`, { opensAt: new Date(Date.now() - 1_000).toISOString() })).status, 200);

    // Nobody ticks but the instances' job workers.
    const admittedCount = async () => (await db<{ n: number }[]>`SELECT count(*)::int AS n FROM queue_places WHERE course_id = ${course} AND status = 'admitted'`)[0]!.n;
    await eventually(admittedCount, (n) => n === seats, 30_000);
    const bots = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).client.register({ name: 'Bot', email: `qbot${i}@example.org`, course })));
    assert.deepEqual(countBy(bots, (answer) => answer.status), { 403: 40 });

    // Each admitted student reads the admission through one instance and registers through the other.
    const views = await Promise.all(joined.map(async (j) => ({ ...j, view: (await j.other.client.request('GET', `/queue/${j.id}`, { token: j.token })).body })));
    const admitted = views.filter((v) => v.view.status === 'admitted');
    assert.equal(admitted.length, seats);
    const registered = await Promise.all(admitted.map((v) => (v.other === a ? b : a).client.request('POST', '/register', { body: { name: 'Admitted', email: v.email, course, admission: v.view.admission } })));
    assert.deepEqual(countBy(registered, (answer) => answer.status), { 201: seats });

    const statuses = async () => countBy(await db<{ status: string }[]>`SELECT status::text FROM queue_places WHERE course_id = ${course}`, (row) => row.status);
    assert.deepEqual(await eventually(statuses, (counts) => counts['sold-out'] === 100 - seats, 30_000), { registered: seats, 'sold-out': 100 - seats });
    await assertInvariants(db);
  });

  test('SIGTERM stops both instances cleanly', async (t) => {
    if (instances.some((instance) => instance.service === undefined)) return t.skip('the instances did not start');
    await sql?.end({ timeout: 5 });
    sql = undefined;
    const exits = await Promise.all(instances.map((instance) => stopProcess(instance.service!, { signal: 'SIGTERM', timeoutMs: 60_000 })));
    for (const [i, exit] of exits.entries()) {
      assert.deepEqual(exit, { code: 0, signal: null }, `instance ${instances[i]!.name} exited with ${JSON.stringify(exit)}:\n${tail(instances[i]!.service!.output())}`);
    }
    // No connection of theirs is left on the database (a backend may take a moment to exit).
    let left = -1;
    for (let attempt = 0; attempt < 50 && left !== 0; attempt++) {
      if (attempt > 0) await sleep(200);
      [{ n: left }] = await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${databaseName}` as unknown as [{ n: number }];
    }
    assert.equal(left, 0, 'connections left on the database after both stopped');
  });
});
