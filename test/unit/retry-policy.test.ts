// The retry policy's steps with attempts that fail as told (test/integration/retry-policy.test.ts
// provokes each error in a real PostgreSQL): which errors run again and in which mode, how many
// times, and when a batch is split or the error is the answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FailedAttempt, MAX_ATTEMPTS, nextStep, retryTransaction, runBatch } from '../../src/db/retry-policy.ts';

const failure = (code: string) => Object.assign(new Error(`failed with ${code}`), { code });

test('each error of the table names its step; any other error splits a batch and answers a single member', () => {
  assert.equal(nextStep(failure('RGB01'), 1, 5), 'lock-first');
  assert.equal(nextStep(failure('23505'), 1, 5), 'lock-first');
  assert.equal(nextStep(failure('40P01'), 1, 1), 'lock-first');
  assert.equal(nextStep(failure('40001'), 1, 1), 'again');
  assert.equal(nextStep(failure('P0001'), 1, 5), 'split');
  assert.equal(nextStep(new Error('no code'), 1, 1), 'answer');
  assert.equal(nextStep(failure('40001'), MAX_ATTEMPTS, 1), 'answer', 'the attempts are bounded');
  assert.equal(nextStep(failure('40001'), MAX_ATTEMPTS, 2), 'split');
});

test('a database out of disk or taking no connections answers the whole batch at once, unsplit', async () => {
  for (const code of ['53100', '53200', '58030', '57P03', '53300', 'ECONNREFUSED', 'CONNECT_TIMEOUT']) {
    assert.equal(nextStep(failure(code), 1, 256), 'answer', code);
  }
  assert.equal(nextStep(failure('CONNECTION_CLOSED'), 1, 256), 'split', 'a connection lost under a statement may be that connection\'s alone');
  let attempts = 0;
  const results = await runBatch(['a', 'b', 'c'], async () => {
    attempts += 1;
    throw failure('53100');
  });
  assert.equal(attempts, 1);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
});

test('a lock-last attempt that meets RGB01 runs again locked first, and its results go to the members', async () => {
  const modes: boolean[] = [];
  const steps: FailedAttempt[] = [];
  const results = await runBatch(['a', 'b'], async (items, lockFirst) => {
    modes.push(lockFirst);
    if (!lockFirst) throw failure('RGB01');
    return items.map((item) => item.toUpperCase());
  }, { onStep: (failed) => steps.push(failed) });
  assert.deepEqual(results, [{ status: 'fulfilled', value: 'A' }, { status: 'fulfilled', value: 'B' }]);
  assert.deepEqual(modes, [false, true]);
  assert.deepEqual(steps, [{ code: 'RGB01', attempt: 1, members: 2, lockFirst: false, step: 'lock-first' }]);
});

test('a batch that keeps failing is split after MAX_ATTEMPTS; only the bad member fails', async () => {
  const runs: string[][] = [];
  const results = await runBatch(['a', 'poison', 'c'], async (items) => {
    runs.push([...items]);
    if (items.includes('poison')) throw failure('40001');
    return [...items];
  });
  assert.equal(results[1]!.status, 'rejected');
  assert.deepEqual([results[0], results[2]], [{ status: 'fulfilled', value: 'a' }, { status: 'fulfilled', value: 'c' }]);
  const whole = runs.filter((items) => items.length === 3).length;
  const poisonAlone = runs.filter((items) => items.length === 1 && items[0] === 'poison').length;
  assert.deepEqual({ whole, poisonAlone }, { whole: MAX_ATTEMPTS, poisonAlone: MAX_ATTEMPTS });
  assert.equal(runs.length, 2 * MAX_ATTEMPTS + 2);
});

test('a transaction gets its error as the answer at once when no rule covers it', async () => {
  let attempts = 0;
  await assert.rejects(retryTransaction(async () => {
    attempts += 1;
    throw failure('23514');
  }), /failed with 23514/);
  assert.equal(attempts, 1);
});

test('a batch answering the wrong number of results is an error, not a partial answer', async () => {
  const [result] = await runBatch(['only'], async () => []);
  assert.equal(result!.status, 'rejected');
});

test('a split batch runs its members alone, a few at a time, each with its own answer', async () => {
  let inFlight = 0;
  let most = 0;
  const members = Array.from({ length: 40 }, (_, i) => i);
  const results = await runBatch(members, async (items) => {
    if (items.length > 1) throw failure('P0001');
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    inFlight -= 1;
    if (items[0] === 7) throw failure('P0001');
    return [items[0]! * 10];
  });
  assert.ok(most > 1 && most <= 4, `members alone at once: ${most}`);
  assert.equal(results[7]!.status, 'rejected');
  assert.deepEqual(results.filter((_, i) => i !== 7), members.filter((i) => i !== 7).map((i) => ({ status: 'fulfilled', value: i * 10 })));
});
