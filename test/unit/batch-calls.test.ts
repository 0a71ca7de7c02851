// Calls made together go in one batch, in order, each answered with its own output; calls made
// while batches are in flight wait for room and go in the next; a failed batch fails its calls only.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { batchCalls } from '../../src/jobs/batch-calls.ts';

test('calls of one turn go in one batch, each answered in order', async () => {
  const batches: number[][] = [];
  const double = batchCalls(async (inputs: number[]) => {
    batches.push(inputs);
    return inputs.map((n) => n * 2);
  }, { maxBatch: 100, maxInFlight: 1 });
  const outputs = await Promise.all([1, 2, 3, 4, 5].map((n) => double(n)));
  assert.deepEqual(outputs, [2, 4, 6, 8, 10]);
  assert.deepEqual(batches, [[1, 2, 3, 4, 5]]);
});

test('at most maxBatch per batch and maxInFlight batches at once; the rest wait for room', async () => {
  let active = 0;
  let peak = 0;
  const sizes: number[] = [];
  const echo = batchCalls(async (inputs: number[]) => {
    sizes.push(inputs.length);
    peak = Math.max(peak, ++active);
    await sleep(20);
    active -= 1;
    return inputs;
  }, { maxBatch: 4, maxInFlight: 2 });
  const outputs = await Promise.all(Array.from({ length: 20 }, (_, i) => echo(i)));
  assert.deepEqual(outputs, Array.from({ length: 20 }, (_, i) => i));
  assert.ok(sizes.every((size) => size <= 4), `batch sizes ${sizes.join(',')}`);
  assert.equal(peak, 2, 'two batches in flight at most, and two reached');
});

test('a batch that throws rejects its own calls, not the next batch\'s', async () => {
  let calls = 0;
  const flaky = batchCalls(async (inputs: string[]) => {
    calls += 1;
    if (calls === 1) throw new Error('database away');
    return inputs.map((s) => s.toUpperCase());
  }, { maxBatch: 10, maxInFlight: 1 });
  const first = await Promise.allSettled([flaky('a'), flaky('b')]);
  assert.deepEqual(first.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(await flaky('c'), 'C');
});
