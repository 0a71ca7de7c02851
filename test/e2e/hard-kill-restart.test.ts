// Everything killed at once with SIGKILL (supervisor, workers, the embedded PostgreSQL), then a
// second start on the same DATA_DIR: it comes up by itself and has every committed registration.
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import {
  findSupervisorPid, freePort, isAlive, killProcessGroup, type ServiceProcess, spawnService,
  stopEmbeddedPostgres, stopProcess, waitForHealth,
} from '../support/service-process.ts';

let dataDir: string;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-hardkill-'));
});
after(async () => {
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid }).catch(() => killProcessGroup(service));
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

async function start(port: number): Promise<Client> {
  service = spawnService({ via: 'node', env: { WORKERS: '2', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' } });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHealth(baseUrl, { timeoutMs: 90_000, service });
  supervisorPid = await findSupervisorPid(service);
  return new Client(baseUrl);
}

test('kill -9 of every process, then npm start again: all committed data is there', async () => {
  const port = await freePort();
  let client = await start(port);
  const course = await newCourse(client, { capacity: 100, waitlistCapacity: 20 });
  // A 503 (load shedding on a busy machine) is an answer to retry, as a client would.
  const registerUntilAnswered = async (i: number) => {
    for (let attempt = 0; ; attempt++) {
      const answer = await client.register(student(course, i));
      if (answer.status !== 503 || attempt === 20) return answer;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  const answers = await Promise.all(Array.from({ length: 80 }, (_, i) => registerUntilAnswered(i)));
  assert.ok(answers.every((a) => a.status === 201), JSON.stringify(answers.filter((a) => a.status !== 201).slice(0, 3).map((a) => [a.status, a.body])));
  const committed = new Set(answers.map((a) => a.body.id as string));

  // Everything at once: the process group (supervisor and workers) and the postmaster.
  const postmasterPid = Number((await readFile(path.join(dataDir, 'db', 'postmaster.pid'), 'utf8')).split('\n')[0]);
  killProcessGroup(service);
  process.kill(postmasterPid, 'SIGKILL');
  await service!.exited;
  for (let i = 0; i < 100 && isAlive(postmasterPid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(!isAlive(postmasterPid));

  client = await start(port);
  const list = await client.admin('GET', `/courses/${course}/registrations?limit=1000`);
  assert.equal(list.status, 200);
  assert.deepEqual(new Set(list.body.items.map((r: { id: string }) => r.id)), committed);
  const seats = (await client.request('GET', `/courses/${course}`)).body;
  assert.deepEqual({ enrolled: seats.enrolled, waitlisted: seats.waitlisted }, { enrolled: 80, waitlisted: 0 });
  // And it keeps working.
  assert.equal((await client.register(student(course, 999))).status, 201);
});
