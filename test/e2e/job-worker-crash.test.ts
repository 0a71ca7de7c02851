// The job worker killed with SIGKILL while it sends: the supervisor replaces it, the lease keeper
// frees the jobs it held, and every email still arrives. A copy may arrive only for a message
// that was in flight at the kill, and then with the same Message-ID.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import postgres from 'postgres';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';
import { newCourse, student } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import {
  embeddedDatabaseUrl, findSupervisorPid, freePort, isAlive, killProcessGroup, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, waitForHealth,
} from '../support/service-process.ts';

const EMAILS = 40;
const EMAIL_CONCURRENCY = 4;
let dataDir: string;
let smtp: TestSmtpServer;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
let sql: postgres.Sql | undefined;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-jobcrash-'));
  smtp = await startSmtpServer({ delayMs: 250 });
});

after(async () => {
  await sql?.end();
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid }).catch(() => killProcessGroup(service));
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await smtp.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    assert.ok(Date.now() < deadline, `${what}: not reached in ${timeoutMs} ms (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('SIGKILL of the job worker mid-send: every email arrives; a copy only for one in flight, same Message-ID', async () => {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  service = spawnService({
    via: 'node',
    env: { WORKERS: '1', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, SMTP_URL: smtp.url, EMAIL_CONCURRENCY: String(EMAIL_CONCURRENCY), RATE_LIMIT_PER_MINUTE: '0' },
  });
  await waitForHealth(baseUrl, { timeoutMs: 60_000, service });
  supervisorPid = await findSupervisorPid(service);
  sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 2, onnotice: () => {} });
  const client = new Client(baseUrl);

  const course = await newCourse(client, { capacity: EMAILS });
  const answers = await Promise.all(Array.from({ length: EMAILS }, (_, i) => client.register(student(course, i, 'crash'))));
  assert.ok(answers.every((a) => a.status === 201));

  // The job worker's pid, from the heartbeat its lease keeper writes.
  const [beat] = await until(() => sql!<{ pid: number }[]>`SELECT DISTINCT pid FROM job_worker_heartbeats WHERE seen_at > now() - interval '5 seconds'`, (rows) => rows.length === 1, 'a job worker heartbeat');
  const jobWorkerPid = beat!.pid;
  await until(async () => smtp.messages.length, (n) => n >= 5, 'the first emails');
  process.kill(jobWorkerPid, 'SIGKILL');
  const receivedAtKill = smtp.messages.length;
  assert.ok(receivedAtKill < EMAILS, 'the kill came mid-send');

  await until(async () => new Set(smtp.messages.map((m) => m.messageId)).size, (n) => n === EMAILS, 'every email delivered after the kill');
  const [replacement] = await until(() => sql!<{ pid: number }[]>`SELECT DISTINCT pid FROM job_worker_heartbeats WHERE seen_at > now() - interval '5 seconds'`, (rows) => rows.length === 1 && rows[0]!.pid !== jobWorkerPid, 'a replacement job worker');
  assert.ok(!isAlive(jobWorkerPid));
  assert.notEqual(replacement!.pid, jobWorkerPid);

  // Copies: only of messages that were in flight when the worker died, each with its Message-ID.
  const perMessage = new Map<string, number>();
  const idsPerRecipient = new Map<string, Set<string>>();
  for (const m of smtp.messages) {
    perMessage.set(m.messageId, (perMessage.get(m.messageId) ?? 0) + 1);
    for (const to of m.to) idsPerRecipient.set(to, (idsPerRecipient.get(to) ?? new Set()).add(m.messageId));
  }
  const copies = [...perMessage.values()].filter((n) => n > 1);
  assert.ok(copies.length <= EMAIL_CONCURRENCY, `${copies.length} messages arrived twice; at most the ${EMAIL_CONCURRENCY} in flight may`);
  assert.ok(copies.every((n) => n === 2));
  assert.equal(idsPerRecipient.size, EMAILS);
  assert.ok([...idsPerRecipient.values()].every((ids) => ids.size === 1), 'a copy carries the same Message-ID');

  const [state] = await until(() => sql!<{ sent: number; jobs: number }[]>`
    SELECT (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent,
           (SELECT count(*) FROM graphile_worker._private_jobs)::int AS jobs`, (rows) => rows[0]!.sent === EMAILS && rows[0]!.jobs === 0, 'all deliveries recorded and no job left');
  assert.deepEqual({ ...state }, { sent: EMAILS, jobs: 0 });
  console.log(`# figures: job worker killed after ${receivedAtKill}/${EMAILS} emails; all ${EMAILS} delivered; ${copies.length} duplicate(s), same Message-ID`);
});
