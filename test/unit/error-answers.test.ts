// What the error handler answers for the database's temporary refusals: 503 `overloaded` with
// Retry-After, never a 500. A real Fastify instance whose route throws the driver's errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { handleError } from '../../src/http/error-handler.ts';

const failure = (code: string) => Object.assign(new Error(`failed with ${code}`), { code });

test('a conflict (a waiting swap\'s lock too) left after every attempt, a PgBouncer refusal, a full disk: 503 with Retry-After; anything else 500', async () => {
  const app = Fastify({ logger: false });
  app.setErrorHandler(handleError);
  app.get('/fail/:code', async (request) => {
    throw failure((request.params as { code: string }).code);
  });
  try {
    for (const code of ['40P01', '40001', 'RGW01', '08P01', '53100', 'ECONNREFUSED']) {
      const answer = await app.inject({ method: 'GET', url: `/fail/${code}` });
      assert.equal(answer.statusCode, 503, `${code}: ${answer.body}`);
      assert.equal(answer.json().type, '/problems/overloaded', code);
      assert.ok(Number(answer.headers['retry-after']) >= 1, `${code}: Retry-After`);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/fail/XX000' })).statusCode, 500);
  } finally {
    await app.close();
  }
});
