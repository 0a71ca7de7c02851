// The turns of one pool's registration transactions: those sharing a course run one after the
// other, in the order they asked; those on disjoint courses at once; a failed one ends its turn.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sql } from '../../src/db/database.ts';
import { inRegistrationTurn } from '../../src/db/registration-turns.ts';

/** A stand-in pool: the turns only key their state by it. */
const pool = () => ({}) as Sql;

function gated(log: string[], name: string) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  return {
    open: () => open(),
    work: async () => {
      log.push(`start ${name}`);
      await gate;
      log.push(`end ${name}`);
      return name;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('transactions on disjoint courses run at once; one sharing a course waits for every earlier one on it', async () => {
  const sql = pool();
  const log: string[] = [];
  const a = gated(log, 'a'), b = gated(log, 'b'), ab = gated(log, 'ab'), a2 = gated(log, 'a2'), c = gated(log, 'c');
  const runs = [
    inRegistrationTurn(sql, ['A'], a.work),
    inRegistrationTurn(sql, ['B'], b.work),
    inRegistrationTurn(sql, ['A', 'B'], ab.work),
    inRegistrationTurn(sql, ['A'], a2.work),
    inRegistrationTurn(sql, ['C'], c.work),
  ];
  await settle();
  assert.deepEqual(log, ['start a', 'start b', 'start c'], 'A, B and C at once; A+B and the second A wait');
  a.open();
  await settle();
  assert.ok(!log.includes('start ab'), 'A+B waits for B too');
  b.open();
  await settle();
  assert.ok(log.includes('start ab') && !log.includes('start a2'), 'then A+B, and the second A after it');
  ab.open();
  await settle();
  assert.ok(log.includes('start a2'));
  a2.open();
  c.open();
  assert.deepEqual(await Promise.all(runs), ['a', 'b', 'ab', 'a2', 'c']);
});

test('a transaction that fails ends its turn: the next on its course runs, and its caller gets the error', async () => {
  const sql = pool();
  const failed = inRegistrationTurn(sql, ['A'], () => Promise.reject(new Error('refused')));
  const next = inRegistrationTurn(sql, ['A', 'A'], async () => 'next');
  await assert.rejects(failed, /refused/);
  assert.equal(await next, 'next');
});
