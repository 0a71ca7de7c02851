// The client errors /openapi.json documents are answers the operations give, on a real socket:
// every operation documents a 4xx; the routes that take nothing refuse a query parameter with 400;
// a body-taking method answers 415 and 413 whether or not the route reads a body, and a GET
// documents neither; the operations with a credential document 401 and 429.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

let paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;

const stack = useStack({}, async (stack) => {
  paths = (await stack.server.client.request('GET', '/openapi.json')).body.paths;
});

const documented = (method: string, path: string) => Object.keys(paths[path]?.[method]?.responses ?? {});

test('every operation documents at least one client error', () => {
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      assert.ok(Object.keys(operation.responses).some((status) => /^4/.test(status)), `${method.toUpperCase()} ${path}: ${Object.keys(operation.responses)}`);
    }
  }
});

test('GET /health and GET /courses answer a query parameter they do not take with a documented 400', async () => {
  for (const path of ['/health', '/courses']) {
    const answer = await stack.server.client.request('GET', `${path}?page=2`);
    assert.equal(answer.status, 400, `${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.type, '/problems/validation');
    assert.match(answer.body.detail, /page/);
    assert.ok(documented('get', path).includes('400'), `${path} documents its 400`);
    assert.equal((await stack.server.client.request('GET', path)).status, 200, `${path} without a query`);
  }
});

test('a DELETE answers 415 and 413 for a body it does not read, and documents them; a GET documents neither', async () => {
  const unsupported = await stack.server.client.request('DELETE', '/webhooks/00000000-0000-4000-8000-000000000000', { token: TEST_ADMIN_TOKEN, raw: 'x', headers: { 'content-type': 'text/plain' } });
  assert.equal(unsupported.status, 415, JSON.stringify(unsupported.body));
  const tooLarge = await stack.server.client.request('DELETE', '/webhooks/00000000-0000-4000-8000-000000000000', { token: TEST_ADMIN_TOKEN, raw: JSON.stringify({ pad: 'x'.repeat(128 * 1024) }), headers: { 'content-type': 'application/json' } });
  assert.equal(tooLarge.status, 413, JSON.stringify(tooLarge.body));
  for (const [method, path] of [['delete', '/webhooks/{id}'], ['delete', '/registrations/{id}']] as const) {
    for (const status of ['413', '415']) assert.ok(documented(method, path).includes(status), `${method.toUpperCase()} ${path} documents ${status}`);
  }
  for (const status of ['413', '415']) assert.ok(!documented('get', '/courses/{id}').includes(status), `GET /courses/{id} does not document ${status}`);
});

test('the operations with a credential document 401 and 429; the public ones neither', () => {
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if ((operation.security ?? []).length === 0) continue;
      for (const status of ['401', '429']) assert.ok(Object.keys(operation.responses).includes(status), `${method.toUpperCase()} ${path} documents ${status}`);
    }
  }
  assert.ok(!documented('get', '/courses/{id}').includes('401'));
});
