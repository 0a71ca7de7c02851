// The single flight behind /metrics: callers share the next run, never one that started before
// they called; runs never overlap and start at least the spacing apart.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { coalesce } from '../../src/observability/cluster-metrics.ts';

test('concurrent calls share one run; a call during a run gets the next one; starts keep the spacing', async () => {
  const starts: number[] = [];
  let active = 0;
  let overlapped = false;
  const shared = coalesce(async () => {
    starts.push(Date.now());
    overlapped ||= ++active > 1;
    await sleep(50);
    active -= 1;
    return starts.length;
  }, 200);
  const first = await Promise.all(Array.from({ length: 50 }, () => shared()));
  assert.deepEqual(new Set(first), new Set([1]), 'fifty concurrent calls, one run');
  // Called before run 2 started (it waits for the spacing): the call shares run 2. Called while
  // run 2 is under way (it started before the call): the call gets run 3.
  const second = shared();
  const alsoSecond = shared();
  while (starts.length < 2) await sleep(5);
  const third = shared();
  assert.deepEqual([await second, await alsoSecond, await third], [2, 2, 3]);
  assert.equal(overlapped, false, 'runs never overlap');
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! >= 190, `start ${i} came ${starts[i]! - starts[i - 1]!} ms after the previous one`);
  // A failed run fails its callers only.
  let fail = true;
  const flaky = coalesce(async () => {
    if (fail) throw new Error('no answer');
    return 'ok';
  }, 0);
  await assert.rejects(flaky(), /no answer/);
  fail = false;
  assert.equal(await flaky(), 'ok');
});
