// The manage page in a real browser (Debian's chromium driven by playwright-core): a waitlisted
// student's page shows the history newest first, with who made each change and why, under the
// page's strict Content-Security-Policy; after a promotion and a cancel from the page it shows those too.
// A seat offered to a waitlisted student: the countdown, and the accept link of the offer email.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { newCourse, student } from '../support/factories.ts';
import { REPO_DIR } from '../support/service-process.ts';
import { useStack } from '../support/stack.ts';

const ARTIFACTS = path.join(REPO_DIR, 'test-artifacts');
const stack = useStack();
let browser: Browser | undefined;
after(() => browser?.close());

test('the history of a promoted registration: promoted by the system, waitlisted at position 1, newest first', async () => {
  const client = stack.server.client;
  const course = await newCourse(client, { capacity: 1, waitlistCapacity: 2 });
  const seat = (await client.register(student(course, 1, 'page'))).body;
  const waiting = (await client.register(student(course, 2, 'page'))).body;
  browser = await launchChromium();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()); });

  await page.goto(`${stack.server.url}/manage/${waiting.id}#token=${waiting.manageToken}`);
  await page.locator('#history:not([hidden])').waitFor();
  assert.deepEqual(await page.locator('#entries li').allTextContents().then((items) => items.map((t) => t.replace(/^.*? (?=waitlisted|promoted|enrolled|cancelled)/, ''))),
    ['waitlisted: the seats were taken; position 1 (by you)']);

  await client.admin('DELETE', `/registrations/${seat.id}`);
  await page.reload();
  await page.locator('#entries li').nth(1).waitFor();
  const entries = await page.locator('#entries li').allTextContents();
  assert.match(entries[0]!, /promoted: seat freed by a cancel \(by the system\)$/);
  assert.match(entries[1]!, /waitlisted: the seats were taken; position 1 \(by you\)$/);
  assert.equal(await page.locator('#entries li time').first().getAttribute('datetime') !== null, true);
  assert.equal(await page.locator('#status').textContent(), 'enrolled');

  // Cancelled from the page: the history shows it at once, without a reload.
  page.once('dialog', (dialog) => void dialog.accept());
  await page.locator('#cancel').click();
  await page.locator('#entries li').nth(2).waitFor();
  assert.match((await page.locator('#entries li').first().textContent())!, /cancelled by the student while enrolled \(by you\)$/);
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'manage-history.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no script or CSP error on the page');
});

test('a seat offered: the page counts down to the deadline, and the email\'s accept link enrols after a confirm', async () => {
  const client = stack.server.client;
  const id = `page-offer-${process.pid}`;
  assert.equal((await client.admin('POST', '/courses', { id, title: 'Offered', capacity: 1, waitlistCapacity: 2, promotion: 'offer', offerHours: 1 })).status, 201);
  const seat = (await client.register(student(id, 1, 'offer'))).body;
  const waiting = (await client.register(student(id, 2, 'offer'))).body;
  await client.admin('DELETE', `/registrations/${seat.id}`);
  browser ??= await launchChromium();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()); });

  const dialogs: string[] = [];
  page.on('dialog', (dialog) => { dialogs.push(dialog.message()); void dialog.accept(); });
  // The accept link as the offer email carries it (src/domain/email-message.ts).
  await page.goto(`${stack.server.url}/manage/${waiting.id}#token=${waiting.manageToken}&action=accept`);
  await page.locator('#status').filter({ hasText: 'enrolled' }).waitFor();
  assert.deepEqual(dialogs, ['Accept the seat? You will be enrolled.'], 'asked once before it answered');
  assert.equal(await page.locator('#offer').isHidden(), true, 'the offer is gone once accepted');
  // The history is read again after the answer is shown: its newest entry changes a moment later.
  await page.locator('#entries li').first().filter({ hasText: 'accepted the offered seat' }).waitFor();
  assert.match((await page.locator('#entries li').first().textContent())!, /accepted the offered seat before its deadline \(by you\)$/);
  assert.equal((await client.request('GET', `/registrations/${waiting.id}`, { token: waiting.manageToken })).body.status, 'enrolled');

  // Another student waiting when the seat frees again: the offer shown with its countdown.
  const next = (await client.register(student(id, 3, 'offer'))).body;
  await client.admin('DELETE', `/registrations/${waiting.id}`);
  await page.goto(`${stack.server.url}/manage/${next.id}#token=${next.manageToken}`);
  await page.locator('#offer:not([hidden])').waitFor();
  const left = await page.locator('#offer-left').textContent();
  assert.match(left!, /^0 h 59 min \d+ s$|^1 h 0 min 0 s$/);
  await page.waitForFunction((before) => document.getElementById('offer-left')!.textContent !== before, left);
  assert.equal(await page.locator('#status').textContent(), 'waitlisted, position 1');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'manage-offer.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no script or CSP error on the page');
});
