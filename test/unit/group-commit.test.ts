// The group commit's own rules, with a fake batch runner (the database is under test elsewhere:
// test/integration/group-commit.test.ts): calls that arrive while a batch runs go together next,
// batches respect their bounds, and a batch that fails is retried member by member.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGroupCommit } from '../../src/db/group-commit.ts';

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

test('calls arriving while a batch runs wait for it, then go together; results go to their callers', async () => {
  const batches: number[][] = [];
  const observed: number[] = [];
  let gate = deferred();
  const commit = createGroupCommit<number, string>({
    maxBatch: 100,
    maxInFlight: 1,
    onBatch: (size) => observed.push(size),
    async run(items) {
      batches.push(items);
      await gate.promise;
      return items.map((n) => `r${n}`);
    },
  });
  const first = commit(0);
  await new Promise((resolve) => setImmediate(resolve));
  const rest = Array.from({ length: 10 }, (_, i) => commit(i + 1));
  assert.deepEqual(batches, [[0]], 'the first call went at once, alone');
  const released = gate;
  gate = deferred();
  released.resolve();
  assert.equal(await first, 'r0');
  gate.resolve();
  assert.deepEqual(await Promise.all(rest), Array.from({ length: 10 }, (_, i) => `r${i + 1}`));
  assert.deepEqual(batches, [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
  assert.deepEqual(observed, [1, 10], 'each batch told, with its size');
});

test('no batch is larger than maxBatch, and no more than maxInFlight run at once', async () => {
  let running = 0;
  let most = 0;
  const sizes: number[] = [];
  const commit = createGroupCommit<number, number>({
    maxBatch: 7,
    maxInFlight: 2,
    async run(items) {
      running += 1;
      most = Math.max(most, running);
      sizes.push(items.length);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      return items.map((n) => n * 2);
    },
  });
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => commit(i)));
  assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 2));
  assert.ok(Math.max(...sizes) <= 7, `sizes ${sizes}`);
  assert.equal(sizes.reduce((a, b) => a + b, 0), 50);
  assert.equal(most, 2);
});

test('a batch that fails is retried member by member: only the bad member fails', async () => {
  const runs: number[] = [];
  const commit = createGroupCommit<string, string>({
    maxBatch: 100,
    maxInFlight: 1,
    async run(items) {
      runs.push(items.length);
      if (items.includes('poison')) throw new Error(`batch of ${items.length} refused`);
      return items.map((item) => item.toUpperCase());
    },
  });
  const calls = ['a', 'b', 'poison', 'c'].map((item) => commit(item).then((value) => ({ value }), (error: Error) => ({ error: error.message })));
  assert.deepEqual(await Promise.all(calls), [{ value: 'A' }, { value: 'B' }, { error: 'batch of 1 refused' }, { value: 'C' }]);
  assert.deepEqual(runs, [4, 1, 1, 1, 1], 'the batch of four failed, then each member went alone');
});
