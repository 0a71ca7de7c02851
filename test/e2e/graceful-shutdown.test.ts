// SIGTERM drains (SPEC invariant 6): requests in flight when the signal arrives are answered and
// committed, jobs in flight finish, and the queued rest is sent after the next start, once each.
//   a) the email-in-request plug-in, an SMTP server that takes 1.5 s per message: every answer
//      waits for its email, so the registrations are still in flight when the supervisor gets SIGTERM;
//   b) the job queue, 0.8 s per message, two at a time: SIGTERM mid-send; the next start sends
//      the rest. No message is sent twice: the sends in flight at the stop were finished and
//      recorded, not abandoned.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import postgres from 'postgres';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';
import { emailInRequestEnvironment } from '../support/email-in-request.ts';
import { newCourse, student } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy, until } from '../support/rush.ts';
import {
  embeddedDatabaseUrl, findSupervisorPid, freePort, killProcessGroup, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, tail, waitForHealth, waitForPostgresGone,
} from '../support/service-process.ts';

const IN_FLIGHT = 16;
const QUEUED = 12;

let dataDir: string;
let smtp: TestSmtpServer;
let service: ServiceProcess | undefined;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-drain-'));
  smtp = await startSmtpServer({ delayMs: 1500 });
});

after(async () => {
  if (service?.isRunning()) await stopProcess(service, { timeoutMs: 30_000 }).catch(() => killProcessGroup(service));
  killProcessGroup(service);
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await smtp.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function start(port: number, env: Record<string, string>): Promise<{ baseUrl: string; supervisorPid: number }> {
  const baseUrl = `http://127.0.0.1:${port}`;
  service = spawnService({
    via: 'node',
    env: { WORKERS: '2', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, SMTP_URL: smtp.url, RATE_LIMIT_PER_MINUTE: '0', SHUTDOWN_TIMEOUT_MS: '20000', ...env },
  });
  await waitForHealth(baseUrl, { timeoutMs: 60_000, service });
  return { baseUrl, supervisorPid: await findSupervisorPid(service) };
}

async function sigterm(supervisorPid: number): Promise<void> {
  const exit = await stopProcess(service!, { pid: supervisorPid, signal: 'SIGTERM', timeoutMs: 60_000 });
  assert.deepEqual(exit, { code: 0, signal: null }, `exited with ${JSON.stringify(exit)}:\n${tail(service!.output())}`);
  assert.deepEqual(await waitForPostgresGone(dataDir), [], 'the embedded PostgreSQL stopped too');
}

test('SIGTERM drains: requests and jobs in flight finish, the queued rest is sent after a restart, once each', async (t) => {
  const port = await freePort();

  // a) Requests in flight.
  let { baseUrl, supervisorPid } = await start(port, { ...emailInRequestEnvironment(), EMAIL_CONCURRENCY: String(IN_FLIGHT) });
  let client = new Client(baseUrl);
  const inFlightCourse = await newCourse(client, { capacity: IN_FLIGHT });
  const pending = Array.from({ length: IN_FLIGHT }, (_, i) => client.register(student(inFlightCourse, i, 'inflight')));
  // Each answer waits 1.5 s for its email: after 400 ms every request is in flight.
  await sleep(400);
  assert.equal(smtp.messages.length, 0, 'no request finished before the signal');
  const stopping = sigterm(supervisorPid);
  const answers = await Promise.all(pending);
  assert.deepEqual(countBy(answers, (a) => a.status), { 201: IN_FLIGHT }, 'every request in flight was answered');
  await stopping;
  assert.equal(new Set(smtp.messages.map((m) => m.messageId)).size, IN_FLIGHT, `each answered request had its email sent:\n${tail(service!.output())}`);

  // b) Jobs in flight: a new start (the same data), the job queue, two sends at a time.
  smtp.behaviour.delayMs = 800;
  ({ baseUrl, supervisorPid } = await start(port, { EMAIL_CONCURRENCY: '2' }));
  client = new Client(baseUrl);
  const queuedCourse = await newCourse(client, { capacity: QUEUED });
  for (let i = 0; i < QUEUED; i++) assert.equal((await client.register(student(queuedCourse, i, 'queued'))).status, 201);
  await until(async () => smtp.messages.length, (n) => n >= IN_FLIGHT + 1, 'the job worker sending', 30_000);
  await sigterm(supervisorPid);
  const sentBeforeRestart = smtp.messages.length - IN_FLIGHT;
  t.diagnostic(`sent before the stop: ${sentBeforeRestart} of ${QUEUED}`);
  assert.ok(sentBeforeRestart < QUEUED, 'the stop came mid-send');

  smtp.behaviour.delayMs = 0;
  ({ baseUrl, supervisorPid } = await start(port, {}));
  await until(async () => new Set(smtp.messages.map((m) => m.messageId)).size, (n) => n === IN_FLIGHT + QUEUED, 'every email after the restart', 60_000);
  // A moment for a duplicate to show, if any were coming.
  await sleep(1000);
  const perMessage = countBy(smtp.messages, (m) => m.messageId);
  assert.deepEqual(Object.entries(perMessage).filter(([, n]) => n > 1), [], 'no message sent twice');

  const sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id IN (${inFlightCourse}, ${queuedCourse}) AND status = 'enrolled'`;
    assert.equal(row!.n, IN_FLIGHT + QUEUED, 'every 201 is stored');
    await assertInvariants(sql);
  } finally {
    await sql.end();
  }
  await sigterm(supervisorPid);
});
