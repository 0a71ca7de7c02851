// The bench's progress line: its text (done/total, elapsed, the estimate), and how it is written
// to a terminal (rewritten in place) and to a file or pipe (whole lines).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { estimateRemainingMs, formatDuration, formatProgress, startProgress } from '../../bench/progress.ts';

test('the estimate is the pace so far times what is left; unknown before the first item', () => {
  assert.equal(estimateRemainingMs(0, 100, 5_000), undefined);
  assert.equal(estimateRemainingMs(25, 100, 10_000), 30_000);
  assert.equal(estimateRemainingMs(100, 100, 10_000), 0);
  assert.equal(estimateRemainingMs(150, 100, 10_000), 0, 'more than the total: nothing left');
  assert.equal(estimateRemainingMs(10, 0, 10_000), undefined);
});

test('durations read as seconds, then minutes', () => {
  assert.equal(formatDuration(0), '0.0 s');
  assert.equal(formatDuration(1_234), '1.2 s');
  assert.equal(formatDuration(42_400), '42 s');
  assert.equal(formatDuration(201_900), '3 min 22 s');
  assert.equal(formatDuration(Number.NaN), '?');
});

test('the line: label, done/total with its unit and percent, elapsed, estimate; and the last line', () => {
  assert.equal(formatProgress({ label: 'model 1: registrations', done: 37, total: 100, unit: 'answers', elapsedMs: 74_000 }),
    'model 1: registrations: 37/100 answers (37%), 1 min 14 s elapsed, about 2 min 06 s left');
  assert.equal(formatProgress({ label: 'rush', done: 0, total: 5000, unit: 'answers', elapsedMs: 800 }),
    'rush: 0/5000 answers (0%), 0.8 s elapsed, estimate after the first');
  assert.equal(formatProgress({ label: 'rush: emails', done: 99, total: 100, unit: 'emails', elapsedMs: 9_000, finished: true, note: '1 missing at the time limit' }),
    'rush: emails: 99/100 emails (99%), done in 9.0 s; 1 missing at the time limit');
  assert.equal(formatProgress({ label: 'x', done: 120, total: 100, unit: 'rows', elapsedMs: 1_000 }).startsWith('x: 100/100 rows (100%)'), true, 'never more than the total');
});

test('on a terminal the line is rewritten in place; elsewhere it is whole lines; the last line ends it', async () => {
  const written: string[] = [];
  const tty = startProgress('import', 10, { unit: 'rows', stream: { isTTY: true, write: (text: string) => written.push(text) }, redrawEveryMs: 10 });
  tty.update(4);
  await sleep(60);
  tty.finish();
  assert.ok(written.length >= 2, JSON.stringify(written));
  assert.ok(written.slice(0, -1).every((w) => w.startsWith('\r') && !w.includes('\n') && w.includes('import: 4/10 rows (40%)')), JSON.stringify(written));
  assert.match(written.at(-1)!, /^\rimport: 4\/10 rows \(40%\), done in [\d.]+ s\u001b\[K\n$/);

  const lines: string[] = [];
  const plain = startProgress('seed', 3, { unit: 'answers', stream: { write: (text: string) => lines.push(text) }, lineEveryMs: 10 });
  plain.update(1);
  await sleep(60);
  plain.update(3);
  plain.finish();
  const count = lines.length;
  await sleep(40);
  assert.equal(lines.length, count, 'nothing written after the last line');
  assert.ok(lines.every((l) => l.startsWith('[bench] seed: ') && l.endsWith('\n') && !l.includes('\r')), JSON.stringify(lines));
  assert.ok(lines.some((l) => l.includes('1/3 answers (33%)') && l.includes('elapsed, about')), JSON.stringify(lines));
  assert.match(lines.at(-1)!, /3\/3 answers \(100%\), done in/);
});
