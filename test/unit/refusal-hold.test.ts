// The hold of not-admitted answers on its own: a 403 waits for it, anything else does not, at most
// maxHeld wait at once, and releaseAll lets every held answer go and the later ones pass at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createRefusalHold, type RefusalHold } from '../../src/http/refusal-hold.ts';

/** Runs the hook for an answer with this status; resolves with the payload once it may be written. */
function send(hold: RefusalHold, statusCode: number, payload = `answer ${statusCode}`): Promise<unknown> {
  const hook = hold.hook as unknown as (request: FastifyRequest, reply: FastifyReply, payload: unknown) => Promise<unknown>;
  return hook({} as FastifyRequest, { statusCode } as FastifyReply, payload);
}

/** Whether `promise` has settled after the microtasks queued now have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => { done = true; });
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('a 403 waits for the hold, other answers go at once, unchanged', async () => {
  const hold = createRefusalHold(60_000);
  assert.equal(await send(hold, 201, 'created'), 'created');
  assert.equal(await send(hold, 409), 'answer 409');
  const refused = send(hold, 403, 'not admitted');
  assert.equal(await settled(refused), false, 'the 403 is held');
  assert.equal(hold.held, 1);
  hold.releaseAll();
  assert.equal(await refused, 'not admitted');
  assert.equal(hold.held, 0);
});

test('the hold ends by itself after holdMs', async () => {
  const hold = createRefusalHold(30);
  const startedAt = performance.now();
  await send(hold, 403);
  assert.ok(performance.now() - startedAt >= 25, 'not written before the hold');
  assert.equal(hold.held, 0);
});

test('beyond maxHeld at once the answers go at once; after releaseAll every one does', async () => {
  const hold = createRefusalHold(60_000, 3);
  const held = [send(hold, 403), send(hold, 403), send(hold, 403)];
  assert.equal(hold.held, 3);
  assert.equal(await settled(send(hold, 403)), true, 'the fourth is over the bound: written at once');
  for (const answer of held) assert.equal(await settled(answer), false);
  hold.releaseAll();
  await Promise.all(held);
  assert.equal(await settled(send(hold, 403)), true, 'closing: nothing is held any more');
  assert.equal(hold.held, 0);
});
