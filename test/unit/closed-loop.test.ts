// The load generator's closed loop (test/support/rush.ts): at most `concurrency` steps in flight,
// each lane taking the next index when its step ends, results in index order, and no step started
// after an abort.
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { runClosedLoop } from '../support/rush.ts';

test('at most `concurrency` steps run at once, every lane is used, and results come in index order', async () => {
  let inFlight = 0;
  let most = 0;
  const lanes = new Set<number>();
  const results = await runClosedLoop(50, 4, async (index, lane) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    lanes.add(lane);
    for (let i = 0; i < index % 3; i++) await tick(); // steps of different lengths
    inFlight -= 1;
    return index * 2;
  });
  assert.equal(most, 4);
  assert.deepEqual([...lanes].sort(), [0, 1, 2, 3]);
  assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 2));
});

test('a lane runs one step at a time, so a step may keep one connection per lane', async () => {
  const busy = new Set<number>();
  await runClosedLoop(30, 3, async (_index, lane) => {
    assert.ok(!busy.has(lane), `lane ${lane} ran two steps at once`);
    busy.add(lane);
    await tick();
    busy.delete(lane);
  });
});

test('no step starts once the signal aborts; the progress is told of each step and then of the interruption', async () => {
  const abort = new AbortController();
  const started: number[] = [];
  const updates: number[] = [];
  let finished: string | undefined = 'not finished';
  const results = await runClosedLoop(100, 2, async (index) => {
    started.push(index);
    if (index === 5) abort.abort();
    await tick();
    return index;
  }, { signal: abort.signal, progress: { update: (done) => updates.push(done), finish: (note) => { finished = note; } } });
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5], 'the steps in flight when it aborted end; none starts after');
  assert.equal(results.filter((r) => r !== undefined).length, 6);
  assert.deepEqual(updates, [1, 2, 3, 4, 5, 6]);
  assert.equal(finished, 'interrupted');
});

test('no steps: an empty result, at once', async () => {
  assert.deepEqual(await runClosedLoop(0, 8, async () => assert.fail('no step to run')), []);
});
