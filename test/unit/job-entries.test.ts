// The limiter that bounds emails in flight (EMAIL_CONCURRENCY), and lowers it during a rush.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { createLimiter, runJobEntries } from '../../src/jobs/job-entries.ts';

test('the limiter never runs more than its limit, in order, and follows a new limit', async () => {
  const limiter = createLimiter(3);
  let running = 0;
  const peaks: number[] = [];
  const order: number[] = [];
  const task = (n: number) => limiter(async () => {
    running += 1;
    peaks.push(running);
    order.push(n);
    await sleep(10);
    running -= 1;
  });
  const first = Array.from({ length: 12 }, (_, i) => task(i));
  await sleep(15);
  limiter.setLimit(1); // a rush
  const during = Math.max(...peaks);
  await Promise.all(first);
  assert.equal(during, 3);
  assert.deepEqual(order, Array.from({ length: 12 }, (_, i) => i), 'first come, first served');
  peaks.length = 0;
  await Promise.all(Array.from({ length: 5 }, (_, i) => task(100 + i)));
  assert.equal(Math.max(...peaks), 1, 'the lowered limit holds');
  limiter.setLimit(4);
  peaks.length = 0;
  await Promise.all(Array.from({ length: 8 }, (_, i) => task(200 + i)));
  assert.equal(Math.max(...peaks), 4, 'raised again');
});

test('a batch job runs every entry; a failed entry is reported for retry after the jitter', async () => {
  let jitters = 0;
  const results = await runJobEntries([1, 2, 3], async (entry) => {
    if (entry === 2) throw new Error('temporary');
    return entry;
  }, async () => { jitters += 1; });
  assert.ok(Array.isArray(results));
  const settled = await Promise.allSettled(results!);
  assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.equal(jitters, 1);
  await assert.rejects(runJobEntries({ one: true }, async () => { throw new Error('alone'); }, async () => { jitters += 1; }), /alone/);
  assert.equal(jitters, 2);
});

test('with a pace, calls start at least the interval apart; without, at once', async () => {
  const limiter = createLimiter(4);
  limiter.setLimit(1, 40); // a rush: one at a time, at most 25 a second
  const starts: number[] = [];
  await Promise.all(Array.from({ length: 4 }, () => limiter(async () => { starts.push(performance.now()); })));
  const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
  assert.ok(gaps.every((gap) => gap >= 35), `gaps ${gaps.map((g) => g.toFixed(1)).join(', ')} ms`);
  limiter.setLimit(4); // the rush is over
  let running = 0;
  let peak = 0;
  await Promise.all(Array.from({ length: 8 }, () => limiter(async () => {
    running += 1;
    peak = Math.max(peak, running);
    await sleep(10);
    running -= 1;
  })));
  assert.equal(peak, 4, 'no pace left behind');
});
