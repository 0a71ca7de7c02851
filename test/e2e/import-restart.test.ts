// An import interrupted by a hard kill resumes where its last committed batch ended: nothing is
// applied twice, nothing is skipped. The job worker is killed with SIGKILL mid-import; its
// replacement picks the job up (the lease keeper frees it) and finishes the file.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import postgres from 'postgres';
import { newCourse } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import {
  embeddedDatabaseUrl, findSupervisorPid, freePort, killProcessGroup, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, waitForHealth,
} from '../support/service-process.ts';

const ROWS = 30_000;
let dataDir: string;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
let sql: postgres.Sql | undefined;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-import-restart-'));
});
after(async () => {
  await sql?.end();
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid }).catch(() => killProcessGroup(service));
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

test('SIGKILL of the job worker mid-import: the import resumes and every row is applied exactly once', async () => {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  service = spawnService({ via: 'node', env: { WORKERS: '1', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, IMPORT_THREADS: '2', RATE_LIMIT_PER_MINUTE: '0' } });
  await waitForHealth(baseUrl, { timeoutMs: 60_000, service });
  supervisorPid = await findSupervisorPid(service);
  sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 2, onnotice: () => {} });
  const client = new Client(baseUrl);

  const courses = await Promise.all([newCourse(client, { capacity: 20_000, waitlistCapacity: 5_000 }), newCourse(client, { capacity: 4_000 })]);
  const lines = ['name,email,course'];
  for (let i = 0; i < ROWS; i++) lines.push(`Student ${i},student${i}@example.org,${courses[i % 2]}`);
  const accepted = await client.request('POST', '/imports', { raw: lines.join('\n'), token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'text/csv' } });
  assert.equal(accepted.status, 202);
  const id = accepted.body.id as string;

  const progress = async () => (await client.admin('GET', `/imports/${id}`)).body as { status: string; processed: number; created: number; existing: number; rejected: number; rows: number; waitlisted: number };
  let deadline = Date.now() + 60_000;
  let seen = await progress();
  while (seen.processed === 0) {
    assert.ok(Date.now() < deadline, 'the import never started');
    await new Promise((resolve) => setTimeout(resolve, 20));
    seen = await progress();
  }
  let beats: { pid: number }[] = [];
  while (beats.length !== 1) {
    assert.ok(Date.now() < deadline, 'no job worker heartbeat');
    beats = await sql<{ pid: number }[]>`SELECT DISTINCT pid FROM job_worker_heartbeats WHERE seen_at > now() - interval '5 seconds'`;
  }
  process.kill(beats[0]!.pid, 'SIGKILL');
  const atKill = (await progress()).processed;
  assert.ok(atKill < ROWS, `the kill came too late (${atKill} of ${ROWS} rows done)`);

  deadline = Date.now() + 180_000;
  while (seen.status !== 'done') {
    assert.ok(Date.now() < deadline && seen.status !== 'failed', `import ${seen.status} after the kill`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    seen = await progress();
  }
  // 15,000 rows for each course: the second has 4,000 seats and no waitlist.
  assert.deepEqual({ rows: seen.rows, processed: seen.processed, created: seen.created, waitlisted: seen.waitlisted, existing: seen.existing, rejected: seen.rejected },
    { rows: ROWS, processed: ROWS, created: 15_000 + 4_000, waitlisted: 0, existing: 0, rejected: 11_000 });
  const [count] = await sql<{ registrations: number; events: number }[]>`
    SELECT (SELECT count(*) FROM registrations)::int AS registrations, (SELECT count(*) FROM registration_events)::int AS events`;
  assert.deepEqual({ ...count }, { registrations: 19_000, events: 19_000 });
  await assertInvariants(sql as never);
  console.log(`# figures: import of ${ROWS} rows, job worker killed after ${atKill} rows; resumed and finished with every row applied once`);
});
