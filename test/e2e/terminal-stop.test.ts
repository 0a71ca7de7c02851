// Ctrl-C in a real terminal, on `npm start` typed at a bash prompt (tmux). The kernel sends
// SIGINT to the whole foreground process group, and npm forwards its own to its child: the
// supervisor gets SIGINT twice within a millisecond, and that must still be one graceful stop
// that ends with the embedded PostgreSQL shut down. A deliberate second Ctrl-C, a moment later,
// forces the exit, and even then no PostgreSQL and no worker is left running.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts';
import { REPEAT_WINDOW_MS } from '../../src/runtime/lifecycle.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { freePort, postgresPids, REPO_DIR, stopEmbeddedPostgres, waitForHealth, waitForPostgresGone } from '../support/service-process.ts';
import { processesOf, waitForProcessesGone } from '../support/processes.ts';
import { openTerminal, type Terminal } from '../support/terminal.ts';

const STARTUP_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;

let dir: string;
let dataDir: string;
let terminal: Terminal;
let smtp: TestSmtpServer;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'registrar-terminal-'));
  await chmod(dir, 0o755); // as root, PostgreSQL runs as the postgres user: it must reach data/db
  dataDir = path.join(dir, 'data');
  terminal = await openTerminal(dir, REPO_DIR);
  smtp = await startSmtpServer({ delayMs: 0 });
});

after(async () => {
  await terminal.press('C-c').catch(() => undefined);
  for (const { pid } of await processesOf(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await terminal.close();
  await smtp.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Types `npm start` with its settings in front, as a user would, and waits until it serves. */
async function npmStart(port: number, settings: Record<string, string>, startNumber: number): Promise<string> {
  const assignments = Object.entries({ DATA_DIR: dataDir, PORT: String(port), WORKERS: '2', ...settings }).map(([name, value]) => `${name}='${value}'`).join(' ');
  await terminal.type('clear');
  await terminal.type(`${assignments} npm start`);
  const baseUrl = `http://127.0.0.1:${port}`;
  const screen = await terminal.waitForScreen(/Press Ctrl-C to stop\.|Registrar could not start/, STARTUP_TIMEOUT_MS);
  assert.doesNotMatch(screen, /Registrar could not start/);
  await waitForHealth(baseUrl, { timeoutMs: STARTUP_TIMEOUT_MS });
  assert.ok((await postgresPids(dataDir)).length > 0, `start ${startNumber}: the embedded PostgreSQL runs`);
  return baseUrl;
}

async function assertNothingLeft(what: string): Promise<void> {
  const screen = await terminal.screen();
  assert.deepEqual(await waitForProcessesGone(dataDir, STOP_TIMEOUT_MS), [], `${what}: no process of the service is left; the terminal shows:\n${screen}`);
  assert.deepEqual(await waitForPostgresGone(dataDir, STOP_TIMEOUT_MS), [], `${what}: no PostgreSQL runs on ${dataDir}/db; the terminal shows:\n${screen}`);
}

test('one Ctrl-C stops `npm start` gracefully, the embedded PostgreSQL included', async () => {
  await npmStart(await freePort(), {}, 1);
  await terminal.press('C-c');
  const screen = await terminal.waitForScreen(/"msg":"stopped"/, STOP_TIMEOUT_MS);
  assert.match(screen, /SIGINT: stopping gracefully/);
  assert.doesNotMatch(screen, /exiting now/, 'the SIGINT that npm forwards is the same Ctrl-C, not a second one');
  await assertNothingLeft('after one Ctrl-C');
});

test('a second Ctrl-C a moment later forces the exit, and still leaves no PostgreSQL behind', async () => {
  // An email job held by a receiving server that takes its time: the job worker's graceful stop
  // waits for it, long enough for a second Ctrl-C to come during the stop.
  smtp.behaviour.delayMs = 30_000;
  const baseUrl = await npmStart(await freePort(), { ADMIN_TOKEN: TEST_ADMIN_TOKEN, SMTP_URL: smtp.url, SHUTDOWN_TIMEOUT_MS: '120000' }, 2);
  const first = await terminal.screen();
  assert.doesNotMatch(first, /left running by an earlier start/, 'the first test\'s stop left no PostgreSQL for this start to stop');
  const client = new Client(baseUrl);
  const course = await newCourse(client, { capacity: 5 });
  assert.equal((await client.register(student(course, 0, 'held'))).status, 201);
  // Its email job reaches the SMTP server and waits there.
  await eventually(async () => smtp.attempts.size, (n) => n === 1, 30_000);
  await terminal.press('C-c');
  await terminal.waitForScreen(/SIGINT: stopping gracefully/, STOP_TIMEOUT_MS);
  await sleep(REPEAT_WINDOW_MS + 500);
  await terminal.press('C-c');
  const screen = await terminal.waitForScreen(/SIGINT again: exiting now/, STOP_TIMEOUT_MS);
  assert.doesNotMatch(screen, /"msg":"stopped"/, 'the stop was forced, not finished');
  await assertNothingLeft('after a forced stop');
});
