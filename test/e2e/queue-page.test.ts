// The student's queue page in a real browser (Debian's chromium, playwright-core) against the
// service as a user runs it (two HTTP workers, the job worker's admission ticker): the position
// falls live, through a kill -9 of the HTTP workers, then admission, Register and the
// confirmation; a place that sees its course sell out, one that leaves, and one whose emailed link
// verifies it.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { newCourse } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import {
  collectWorkerPids, findSupervisorPid, freePort, killProcessGroup, REPO_DIR, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, waitForHealth,
} from '../support/service-process.ts';

const ARTIFACTS = path.join(REPO_DIR, 'test-artifacts');
let dataDir: string;
let baseUrl: string;
let client: Client;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
let browser: Browser | undefined;
const pageErrors: string[] = [];

type Joined = { id: string; email: string; queueToken: string };

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-queue-page-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  client = new Client(baseUrl);
  service = spawnService({ via: 'node', env: { WORKERS: '2', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' } });
  await waitForHealth(baseUrl, { timeoutMs: 60_000, service });
  supervisorPid = await findSupervisorPid(service);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid }).catch(() => killProcessGroup(service));
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

async function join(course: string, label: string): Promise<Joined> {
  const email = `${label}@example.org`;
  const answer = await client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${label}`, email } });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { id: answer.body.id, email, queueToken: answer.body.queueToken };
}

async function openCourse(course: string): Promise<void> {
  const answer = await client.admin('PATCH', `/courses/${course}`, { opensAt: new Date(Date.now() - 1_000).toISOString() });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

/** Registers every place of `places` that is admitted now, with its admission; how many. */
async function registerAdmitted(course: string, places: Joined[]): Promise<number> {
  const seen = await Promise.all(places.map((p) => client.request('GET', `/queue/${p.id}`, { token: p.queueToken })));
  const admitted = seen.filter((answer) => answer.body.status === 'admitted');
  const answers = await Promise.all(admitted.map((answer) => client.request('POST', '/register', {
    body: { name: answer.body.name, email: answer.body.email, course, admission: answer.body.admission },
  })));
  assert.ok(answers.every((a) => a.status === 201), JSON.stringify(answers.find((a) => a.status !== 201)?.body));
  return answers.length;
}

/** The page of a place, opened with `link` (the path and fragment) or with its queue token. */
async function openPage(place: Joined, link = `/queue/${place.id}/page#token=${encodeURIComponent(place.queueToken)}`): Promise<Page> {
  const page = await browser!.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // A stream cut by the kill, or a reconnect refused while the workers restart, is expected.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
  });
  await page.goto(`${baseUrl}${link}`);
  return page;
}

const text = (page: Page, selector: string) => page.evaluate((s) => document.querySelector(s)?.textContent ?? '', selector);
const status = (page: Page) => page.evaluate(() => document.body.dataset.status ?? '');

/** The page's shown position once it differs from `than` (or the place is no longer waiting). */
async function nextPosition(page: Page, than: string): Promise<string> {
  await page.waitForFunction((previous) => document.body.dataset.status !== 'waiting'
    || (/^\d+$/.test(document.getElementById('position')?.textContent ?? '') && document.getElementById('position')?.textContent !== previous), than, { timeout: 60_000 });
  return (await status(page)) === 'waiting' ? text(page, '#position') : '';
}

test('the page shows the position falling live, through a kill -9 of the HTTP workers, then admission, Register and the confirmation', async () => {
  const course = await newCourse(client, { title: 'Queue page', capacity: 400, waitlistCapacity: 0, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'arrival' } });
  const others: Joined[] = [];
  for (let wave = 0; wave < 4; wave++) others.push(...await Promise.all(Array.from({ length: 50 }, (_, i) => join(course, `page${wave * 50 + i}`))));
  const watcher = await join(course, 'watcher'); // last in arrival order: rank 201

  const page = await openPage(watcher);
  await page.waitForFunction(() => document.body.dataset.status === 'waiting', undefined, { timeout: 30_000 });
  await page.waitForFunction((id) => document.getElementById('course')?.textContent === `Queue page (${id})`, course, { timeout: 10_000 });
  assert.equal(await text(page, '#position'), 'given when registration opens', 'no position before opensAt');
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue-page-before-opening.png') });

  // Opening: the job worker's ticker orders the places and admits the head, within its bound.
  await openCourse(course);
  const positions = [await nextPosition(page, '')];
  assert.ok(Number(positions[0]) < 201, `position ${positions[0]} after the first admissions`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue-page-waiting.png') });
  await registerAdmitted(course, others);
  positions.push(await nextPosition(page, positions[0]!));
  assert.notEqual(positions[1], '', 'still waiting when the workers are killed');

  // Both HTTP workers killed: the page's stream dies with its worker; the supervisor starts new
  // ones, the page reconnects by itself and goes on showing live state.
  const workers = await collectWorkerPids(baseUrl, (pids) => pids.size >= 2);
  for (const pid of workers) process.kill(pid, 'SIGKILL');
  await waitForHealth(baseUrl, { timeoutMs: 60_000, service });
  // Whatever the page shows from here on (a position, then admitted) came through a new stream.
  while ((await status(page)) === 'waiting') {
    await registerAdmitted(course, others);
    const next = await nextPosition(page, positions.at(-1)!);
    if (next) positions.push(next);
  }
  assert.equal(await status(page), 'admitted', `positions seen: ${positions.join(', ')}`);
  const numbers = positions.map(Number);
  assert.ok(numbers.length >= 2 && numbers.every((n, i) => i === 0 || n < numbers[i - 1]!), `the position fell: ${positions.join(', ')}`);

  // Admitted: the Register button and the time left, counting down.
  assert.equal(await page.isVisible('#register'), true);
  const left = await text(page, '#time-left');
  assert.match(left, /\d+ min \d\d s|\d+ s/);
  await page.waitForFunction((first) => document.getElementById('time-left')?.textContent !== first, left, { timeout: 10_000 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue-page-admitted.png') });
  await page.click('#register');
  await page.waitForSelector('#confirmation', { state: 'visible', timeout: 30_000 });
  assert.match(await text(page, '#outcome'), new RegExp(`enrolled in ${course}`));
  const manage = await page.getAttribute('#manage', 'href');
  assert.match(manage ?? '', /^\/manage\/[0-9a-f-]{36}#token=/);
  await page.waitForFunction(() => document.body.dataset.status === 'registered', undefined, { timeout: 30_000 });
  assert.equal(await page.isVisible('#register'), false);
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue-page-registered.png') });

  const stored = await client.admin('GET', `/queue/${watcher.id}`);
  assert.equal(stored.body.status, 'registered');
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('a waiting place sees its course sell out at once; a place that leaves sees that it left', async () => {
  const course = await newCourse(client, { capacity: 1, waitlistCapacity: 0, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'arrival' } });
  const head = await join(course, 'sold-head');
  const waiting = await join(course, 'sold-waiting');
  const leaving = await join(course, 'sold-leaving');
  await openCourse(course);
  const page = await openPage(waiting);
  const other = await openPage(leaving);
  await page.waitForFunction(() => document.getElementById('position')?.textContent === '1', undefined, { timeout: 30_000 });

  assert.equal((await client.request('DELETE', `/queue/${leaving.id}`, { token: leaving.queueToken })).body.status, 'left');
  await other.waitForFunction(() => document.body.dataset.status === 'left', undefined, { timeout: 30_000 });
  assert.match(await text(other, '#message'), /You left the queue/);
  await other.screenshot({ path: path.join(ARTIFACTS, 'queue-page-left.png') });

  // The head registers: no seat and no waitlist place is left, so the next tick sells out.
  await waitForAdmitted(head);
  assert.equal(await registerAdmitted(course, [head]), 1);
  await page.waitForFunction(() => document.body.dataset.status === 'sold-out', undefined, { timeout: 30_000 });
  assert.match(await text(page, '#message'), /every seat and waitlist place of this course is taken/);
  assert.equal(await page.isVisible('#register'), false);
  assert.equal(await page.isVisible('#position'), false);
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue-page-sold-out.png') });
  assert.deepEqual(pageErrors, []);
  await page.close();
  await other.close();
});

async function waitForAdmitted(place: Joined): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await client.request('GET', `/queue/${place.id}`, { token: place.queueToken })).body.status !== 'admitted') {
    assert.ok(Date.now() < deadline, 'the head was admitted by the ticker');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('with verifyEmail, opening the emailed link confirms the place: unverified, then waiting', async () => {
  const course = await newCourse(client, { capacity: 5, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'arrival', verifyEmail: true } });
  const place = await join(course, 'verify-me');
  assert.equal((await client.admin('GET', `/queue/${place.id}`)).body.status, 'unverified');
  // The job worker sends the joined email to the built-in mailbox: its link carries a token of its own.
  const deadline = Date.now() + 60_000;
  let link: string | undefined;
  while (!link) {
    const mail = await client.admin('GET', `/admin/mail?to=${encodeURIComponent(place.email)}`);
    const texts = (mail.body.items ?? []).map((item: { text: string }) => item.text).join('\n');
    link = /\/queue\/[0-9a-f-]{36}\/page#token=[A-Za-z0-9%._~-]+/.exec(texts)?.[0];
    assert.ok(link || Date.now() < deadline, 'the joined email arrived');
    if (!link) await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.ok(link.startsWith(`/queue/${place.id}/page#token=`));
  const page = await openPage(place, link);
  await page.waitForFunction(() => document.body.dataset.status === 'waiting', undefined, { timeout: 30_000 });
  assert.equal((await client.admin('GET', `/queue/${place.id}`)).body.status, 'waiting', 'the page verified the place');
  assert.deepEqual(pageErrors, []);
  await page.close();
});
