// The OpenAPI document is one a client can be built from: TypeScript types are generated from the
// live /openapi.json of the running service (openapi-typescript), a small client program is
// type-checked against them with tsc (strict), and then drives the service through openapi-fetch
// over a socket: create a course (admin), register, read the registration with its manage token,
// list, cancel, and a typed problem for a registration the course has no room for.
// Generated files go to a temporary directory only; nothing generated is kept.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { freePort, killProcessGroup, NODE_BIN, REPO_DIR, type ServiceProcess, spawnService, tail, waitForHealth } from '../support/service-process.ts';

const run = promisify(execFile);

let db: TestDatabase;
let dataDir: string;
let workDir: string;
let service: ServiceProcess | undefined;
let baseUrl: string;
let publicUrl: string;

before(async () => {
  db = await createTestDatabase(2);
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-openapi-data-'));
  workDir = await mkdtemp(path.join(tmpdir(), 'registrar-openapi-client-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  // What a proxy in front of the service would be reached at: the document's server.
  publicUrl = `http://registrar.example.test:${port}`;
  service = spawnService({
    via: 'node',
    env: { DATABASE_URL: db.url, WORKERS: '1', PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, PUBLIC_URL: publicUrl, LOG_LEVEL: 'warn' },
  });
  await waitForHealth(baseUrl, { timeoutMs: 90_000, service });
});

after(async () => {
  killProcessGroup(service);
  await Promise.race([service?.exited, sleep(30_000, undefined, { ref: false })]);
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
  await rm(workDir, { recursive: true, force: true });
});

/**
 * The client program. Every field it reads is typed by the generated `paths`; the lines marked
 * @ts-expect-error must not compile, which shows the types are the document's, not `any`.
 */
const CLIENT_PROGRAM = `
import createClient from 'openapi-fetch';
import type { paths } from './api.ts';

export async function drive(baseUrl: string, adminToken: string, course: string) {
  const admin = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${adminToken}\` } });
  const api = createClient<paths>({ baseUrl });

  const created = await admin.POST('/courses', { body: { id: course, title: 'Typed clients', capacity: 1, waitlistCapacity: 0 } });
  if (created.data === undefined) throw new Error(\`create course: \${created.response.status}\`);
  const seatsLeft: number = created.data.seatsLeft;

  const registered = await api.POST('/register', { body: { name: 'Ada Lovelace', email: 'ada@example.org', course } });
  if (registered.data === undefined || !('manageToken' in registered.data)) throw new Error(\`register: \${registered.response.status}\`);
  const { id, manageToken } = registered.data;
  const status: 'enrolled' | 'waitlisted' | 'cancelled' = registered.data.status;
  // @ts-expect-error: a registration has no such field
  void registered.data.noSuchField;
  // @ts-expect-error: a course needs a title
  void (() => admin.POST('/courses', { body: { id: 'x', capacity: 1 } }));

  const full = await api.POST('/register', { body: { name: 'Grace Hopper', email: 'grace@example.org', course } });
  const problem: string | undefined = full.error?.type;

  const read = await api.GET('/registrations/{id}', { params: { path: { id } }, headers: { authorization: \`Bearer \${manageToken}\` } });
  if (read.data === undefined) throw new Error(\`read: \${read.response.status}\`);

  const listed = await admin.GET('/courses/{id}/registrations', { params: { path: { id: course }, query: { limit: 10 } } });
  if (listed.data === undefined) throw new Error(\`list: \${listed.response.status}\`);
  const listedIds: string[] = listed.data.items.map((item) => item.id);

  const cancelled = await api.DELETE('/registrations/{id}', { params: { path: { id } }, headers: { authorization: \`Bearer \${manageToken}\` } });
  if (cancelled.data === undefined) throw new Error(\`cancel: \${cancelled.response.status}\`);

  return {
    seatsLeft, id, status, readStatus: read.data.status, listedIds, cancelledStatus: cancelled.data.status,
    full: { status: full.response.status, problem, contentType: full.response.headers.get('content-type') },
  };
}
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true, noEmit: true, target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext',
    allowImportingTsExtensions: true, verbatimModuleSyntax: true, erasableSyntaxOnly: true, types: ['node'], skipLibCheck: true,
  },
  files: ['client.ts'],
};

test('a client generated from the live /openapi.json type-checks and drives the API through openapi-fetch', { timeout: 240_000 }, async () => {
  const answer = await fetch(`${baseUrl}/openapi.json`);
  assert.equal(answer.status, 200);
  const document = await answer.json();
  assert.deepEqual(document.servers, [{ url: publicUrl }], 'the document names PUBLIC_URL as its server');

  await writeFile(path.join(workDir, 'api.ts'), astToString(await openapiTS(document)));
  await writeFile(path.join(workDir, 'client.ts'), CLIENT_PROGRAM);
  await writeFile(path.join(workDir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  await writeFile(path.join(workDir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  // The program resolves openapi-fetch and @types/node from the repository's node_modules.
  await symlink(path.join(REPO_DIR, 'node_modules'), path.join(workDir, 'node_modules'), 'dir');

  const tsc = path.join(REPO_DIR, 'node_modules/typescript/bin/tsc');
  await run(NODE_BIN, [tsc, '-p', path.join(workDir, 'tsconfig.json')], { cwd: workDir }).catch((error: { stdout?: string; stderr?: string }) => {
    assert.fail(`the client program does not type-check against the generated types:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });

  const client = (await import(pathToFileURL(path.join(workDir, 'client.ts')).href)) as { drive(baseUrl: string, token: string, course: string): Promise<any> };
  const result = await client.drive(baseUrl, TEST_ADMIN_TOKEN, 'typed-client').catch((error: Error) => {
    assert.fail(`${error.message}\n${tail(service?.output() ?? '')}`);
  });
  assert.equal(result.seatsLeft, 1);
  assert.equal(result.status, 'enrolled');
  assert.equal(result.readStatus, 'enrolled');
  assert.deepEqual(result.listedIds, [result.id]);
  assert.equal(result.cancelledStatus, 'cancelled');
  assert.deepEqual(result.full, { status: 409, problem: '/problems/course-full', contentType: 'application/problem+json; charset=utf-8' });
});
