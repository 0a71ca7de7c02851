// Owns request content types: every route that takes a body answers a body of a type it does not
// take (or one without a Content-Type) with 415 /problems/unsupported-media-type and changes
// nothing; text/csv is taken by POST /imports alone, form bodies by /dashboard/login alone.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { newCourse } from '../support/factories.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';
import { readStoredState } from '../support/stored-state.ts';

const ids = { course: '', registration: '', manageToken: '', webhook: '' };

const stack = useStack({ uploadMaxBytes: 1024 * 1024 }, async (stack) => {
  const c = stack.server.client;
  ids.course = await newCourse(c, { capacity: 5 });
  const registration = await c.register({ name: 'Ada Lovelace', email: 'ada@example.org', course: ids.course });
  assert.equal(registration.status, 201);
  ids.registration = registration.body.id;
  ids.manageToken = registration.body.manageToken;
  const webhook = await c.admin('POST', '/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['registration.created'] });
  assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
  ids.webhook = webhook.body.id;
});

type Raw = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

/** One request with exactly these headers (fetch would add a Content-Type to a string body). */
function send(method: string, target: string, headers: Record<string, string>, body: string): Promise<Raw> {
  const url = new URL(target, stack.server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function assertUnsupported(answer: Raw, label: string): void {
  assert.equal(answer.status, 415, `${label}: ${answer.text}`);
  assert.match(String(answer.headers['content-type']), /^application\/problem\+json/, label);
  const body = JSON.parse(answer.text);
  assert.equal(body.type, '/problems/unsupported-media-type', label);
  assert.equal(body.status, 415, label);
  assert.ok(typeof body.title === 'string' && body.title.length > 0, label);
  assert.ok(typeof body.detail === 'string' && body.detail.length > 0, label);
  assert.doesNotMatch(answer.text, /_events|_readableState|IncomingMessage|Unsupported Media Type/, label);
  assert.equal(answer.headers['set-cookie'], undefined, `${label}: no session from a refused body`);
}

const OTHER_TYPES = ['text/plain', 'application/xml', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/problem+json', 'text/json'];

test('a body of a type a route does not take is 415 unsupported-media-type on every route family, and changes nothing', async () => {
  const before = await readStoredState(stack.db.sql);
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  const routes: { method: string; path: string; headers: Record<string, string>; body: string; types: string[] }[] = [
    { method: 'POST', path: '/register', headers: {}, body: JSON.stringify({ name: 'Grace Hopper', email: 'grace@example.org', course: ids.course }), types: ['text/csv', 'application/x-www-form-urlencoded', ...OTHER_TYPES] },
    { method: 'POST', path: '/courses', headers: admin, body: JSON.stringify({ id: 'ct-new', title: 'New', capacity: 3 }), types: ['text/csv', 'application/x-www-form-urlencoded', ...OTHER_TYPES] },
    { method: 'PATCH', path: `/courses/${ids.course}`, headers: admin, body: JSON.stringify({ capacity: 9 }), types: ['text/csv', 'application/x-www-form-urlencoded', ...OTHER_TYPES] },
    { method: 'DELETE', path: `/registrations/${ids.registration}`, headers: { authorization: `Bearer ${ids.manageToken}` }, body: 'name,email,course\n', types: ['text/csv', ...OTHER_TYPES] },
    { method: 'POST', path: '/webhooks', headers: admin, body: JSON.stringify({ url: 'http://127.0.0.1:9/other', events: ['registration.created'] }), types: ['text/csv', 'application/x-www-form-urlencoded', ...OTHER_TYPES] },
    { method: 'DELETE', path: `/webhooks/${ids.webhook}`, headers: admin, body: 'x', types: ['text/csv', ...OTHER_TYPES] },
    // POST /imports takes text/csv only: not even JSON, which every other route takes.
    { method: 'POST', path: '/imports', headers: admin, body: '{"name":"Grace Hopper","email":"grace@example.org","course":"x"}', types: ['application/json', 'application/x-www-form-urlencoded', 'text/csv+x', ...OTHER_TYPES] },
    { method: 'POST', path: '/dashboard/login', headers: {}, body: `token=${TEST_ADMIN_TOKEN}`, types: ['text/csv', ...OTHER_TYPES] },
  ];
  for (const route of routes) {
    for (const type of route.types) {
      const answer = await send(route.method, route.path, { ...route.headers, 'content-type': type }, route.body);
      assertUnsupported(answer, `${route.method} ${route.path} as ${type}`);
    }
    // A body and no Content-Type at all: what it is cannot be known, so it is not parsed.
    assertUnsupported(await send(route.method, route.path, route.headers, route.body), `${route.method} ${route.path} without a Content-Type`);
  }
  assert.deepEqual(await readStoredState(stack.db.sql), before, 'a refused body changed nothing');
});

test('the JSON routes still take JSON, POST /imports takes text/csv, the login takes a form', async () => {
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  const registered = await send('POST', '/register', { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify({ name: 'Grace Hopper', email: 'grace@example.org', course: ids.course }));
  assert.equal(registered.status, 201, registered.text);
  const imported = await send('POST', '/imports', { ...admin, 'content-type': 'text/csv; charset=utf-8' }, `name,email,course\nAlan Turing,alan@example.org,${ids.course}\n`);
  assert.equal(imported.status, 202, imported.text);
  assert.equal(JSON.parse(imported.text).status, 'queued');
  const login = await send('POST', '/dashboard/login', { 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams({ token: TEST_ADMIN_TOKEN }).toString());
  assert.equal(login.status, 303, login.text);
});
