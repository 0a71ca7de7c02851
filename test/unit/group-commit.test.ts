// The group commit's own rules, with a fake batch runner (the database is under test elsewhere:
// test/integration/group-commit.test.ts): calls that arrive while a batch runs go together next,
// batches respect their bounds, and each member's result, or failure, goes to its caller.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGroupCommit } from '../../src/db/group-commit.ts';

const fulfilled = <O>(value: O): PromiseSettledResult<O> => ({ status: 'fulfilled', value });

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
      return items.map((n) => fulfilled(`r${n}`));
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
      return items.map((n) => fulfilled(n * 2));
    },
  });
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => commit(i)));
  assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 2));
  assert.ok(Math.max(...sizes) <= 7, `sizes ${sizes}`);
  assert.equal(sizes.reduce((a, b) => a + b, 0), 50);
  assert.equal(most, 2);
});

test('a member that failed goes to its caller alone; a batch that throws fails each of its callers', async () => {
  const commit = createGroupCommit<string, string>({
    maxBatch: 100,
    maxInFlight: 1,
    async run(items) {
      if (items.includes('everyone')) throw new Error(`batch of ${items.length} refused`);
      return items.map((item): PromiseSettledResult<string> =>
        (item === 'poison' ? { status: 'rejected', reason: new Error('poison refused') } : fulfilled(item.toUpperCase())));
    },
  });
  const settle = (items: string[]) => Promise.all(items.map((item) => commit(item).then((value) => ({ value }), (error: Error) => ({ error: error.message }))));
  assert.deepEqual(await settle(['a', 'b', 'poison', 'c']), [{ value: 'A' }, { value: 'B' }, { error: 'poison refused' }, { value: 'C' }]);
  assert.deepEqual(await settle(['d', 'everyone']), [{ error: 'batch of 2 refused' }, { error: 'batch of 2 refused' }]);
});

test('an observer that throws fails the batch\'s callers, and later batches still run', async () => {
  let observed = 0;
  const commit = createGroupCommit<number, number>({
    run: async (items) => items.map((n) => fulfilled(n * 2)),
    maxBatch: 8,
    maxInFlight: 1,
    onBatch: () => {
      observed += 1;
      if (observed === 1) throw new Error('metrics broke');
    },
  });
  await assert.rejects(commit(1), /metrics broke/);
  assert.equal(await commit(2), 4);
});

/** A group commit of `{ id, key }` items whose batches each wait for their own gate; it records
 * each batch's items as it starts and checks that no two batches in flight share a key. */
function keyedCommit(maxInFlight: number) {
  type Item = { id: string; key: string };
  const started: { ids: string[]; release(): void }[] = [];
  const heldNow = new Set<string>();
  const overlaps: string[] = [];
  const commit = createGroupCommit<Item, string>({
    maxBatch: 100,
    maxInFlight,
    keysOf: (item) => [item.key],
    async run(items) {
      const gate = deferred();
      started.push({ ids: items.map((i) => i.id), release: gate.resolve });
      const keys = [...new Set(items.map((i) => i.key))];
      for (const key of keys) {
        if (heldNow.has(key)) overlaps.push(key);
        heldNow.add(key);
      }
      await gate.promise;
      for (const key of keys) heldNow.delete(key);
      return items.map((i) => fulfilled(i.id));
    },
  });
  return { commit: (id: string, key: string) => commit({ id, key }), started, overlaps };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('with keys, batches on disjoint keys run at once, up to maxInFlight; a call whose key is in flight waits and goes with the others of its key', async () => {
  const { commit, started, overlaps } = keyedCommit(3);
  const a1 = commit('a1', 'A');
  await turn();
  const b1 = commit('b1', 'B');
  await turn();
  assert.deepEqual(started.map((s) => s.ids), [['a1'], ['b1']], 'B went beside A, not behind it');
  // A is in flight: its calls wait; C's go beside A and B, and the rest of C's with them.
  const later = [commit('a2', 'A'), commit('c1', 'C'), commit('a3', 'A'), commit('c2', 'C')];
  await turn();
  assert.deepEqual(started.map((s) => s.ids), [['a1'], ['b1'], ['c1', 'c2']]);
  // Three in flight: a call for a free key waits for a slot.
  const d1 = commit('d1', 'D');
  await turn();
  assert.equal(started.length, 3);
  started[0]!.release(); // A's batch ends: the waiting calls of A and D go, as one batch
  assert.equal(await a1, 'a1');
  await turn();
  assert.deepEqual(started.map((s) => s.ids).slice(3), [['a2', 'a3', 'd1']]);
  for (const s of started) s.release();
  assert.deepEqual(await Promise.all([b1, ...later, d1]), ['b1', 'a2', 'c1', 'a3', 'c2', 'd1']);
  assert.deepEqual(overlaps, [], 'no key in two batches at once');
});

test('with keys, calls for one key make one batch at a time however many may be in flight', async () => {
  const { commit, started, overlaps } = keyedCommit(8);
  const first = commit('h0', 'hot');
  await turn();
  const rest: Promise<string>[] = [];
  for (let round = 1; round <= 3; round += 1) {
    rest.push(...Array.from({ length: 5 }, (_, i) => commit(`h${round}.${i}`, 'hot')));
    await turn();
  }
  assert.equal(started.length, 1, 'the calls wait for the batch in flight');
  started[0]!.release();
  await first;
  await turn();
  assert.equal(started.length, 2);
  assert.equal(started[1]!.ids.length, 15, 'everything that arrived meanwhile, in one batch');
  started[1]!.release();
  assert.equal((await Promise.all(rest)).length, 15);
  assert.deepEqual(overlaps, []);
});
