// Retention as the running service does it: the job worker removes an upload file older than
// RETENTION_DAYS soon after it starts and says so in its log, keeps a recent one, and folds the
// delivery figures and snapshots the queue so /admin/jobs reads them.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import postgres from 'postgres';
import { newCourse, student } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import {
  embeddedDatabaseUrl, findSupervisorPid, freePort, killProcessGroup, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, waitForHealth,
} from '../support/service-process.ts';

let dataDir: string;
let client: Client;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
const oldUpload = `${randomUUID()}.csv`;
const newUpload = `${randomUUID()}.csv`;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-retention-'));
  const uploads = path.join(dataDir, 'uploads');
  await mkdir(uploads, { recursive: true });
  for (const name of [oldUpload, newUpload]) await writeFile(path.join(uploads, name), 'name,email,course\n');
  const longAgo = new Date(Date.now() - 31 * 24 * 60 * 60 * 1000);
  await utimes(path.join(uploads, oldUpload), longAgo, longAgo);
  const port = await freePort();
  client = new Client(`http://127.0.0.1:${port}`);
  service = spawnService({ via: 'node', env: { WORKERS: '1', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0', RETENTION_DAYS: '30' } });
  await waitForHealth(client.baseUrl, { timeoutMs: 60_000, service });
  supervisorPid = await findSupervisorPid(service);
});

after(async () => {
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid }).catch(() => killProcessGroup(service));
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

test('the job worker removes an upload older than RETENTION_DAYS, keeps a recent one, and keeps /admin/jobs figures from its snapshots', async () => {
  await service!.waitForOutput(/removed what is older than the retention/, 120_000);
  assert.deepEqual(await readdir(path.join(dataDir, 'uploads')), [newUpload]);

  const course = await newCourse(client, { capacity: 5 });
  for (let i = 0; i < 5; i += 1) assert.equal((await client.register(student(course, i, 'kept'))).status, 201);
  const sql = postgres(await embeddedDatabaseUrl(dataDir), { max: 1, onnotice: () => {} });
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const jobs = (await client.admin('GET', '/admin/jobs')).body;
      const [row] = await sql<{ sent: number; changes: number; snapshots: number }[]>`
        SELECT (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent,
          (SELECT count(*) FROM delivery_figure_changes)::int AS changes,
          (SELECT count(*) FROM queue_figures WHERE taken_at > now() - interval '5 seconds')::int AS snapshots`;
      // The emails counted exactly, the changes folded into the totals, the queue read from a snapshot.
      if (row!.sent === 5 && jobs.emails.sent === 5 && row!.changes === 0 && row!.snapshots > 0) break;
      assert.ok(Date.now() < deadline, `figures ${JSON.stringify(jobs.emails)}, rows ${JSON.stringify(row)}`);
      await sleep(250);
    }
  } finally {
    await sql.end();
  }
});
