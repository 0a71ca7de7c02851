// The dashboard's login never puts the admin token in a URL: the page's form posts (from its
// script as JSON, or as a plain form when the script did not run), and either way the answer is
// a session cookie; a wrong token is refused and sets nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack();

async function post(body: string, contentType: string): Promise<Response> {
  return fetch(`${stack.server.url}/dashboard/login`, { method: 'POST', headers: { 'content-type': contentType }, body, redirect: 'manual' });
}

test('the login form posts to /dashboard/login, never GETs the token into a URL', async () => {
  const page = await fetch(`${stack.server.url}/dashboard`);
  assert.equal(page.status, 401);
  const form = /<form[^>]*id="login"[^>]*>/.exec(await page.text())?.[0] ?? '';
  assert.match(form, /method="post"/);
  assert.match(form, /action="\/dashboard\/login"/);
});

test('a plain form post with the admin token gets the session cookie and goes on to the dashboard', async () => {
  const answer = await post(new URLSearchParams({ token: TEST_ADMIN_TOKEN }).toString(), 'application/x-www-form-urlencoded');
  assert.equal(answer.status, 303);
  assert.equal(answer.headers.get('location'), '/dashboard');
  const cookie = answer.headers.get('set-cookie') ?? '';
  assert.match(cookie, /HttpOnly/i);
  const dashboard = await fetch(`${stack.server.url}/dashboard`, { headers: { cookie: cookie.split(';')[0]! } });
  assert.equal(dashboard.status, 200);
  assert.match(await dashboard.text(), /id="lanes"/);
});

test('the script\'s JSON login still works; a wrong token, either way, is refused and sets no cookie', async () => {
  const json = await post(JSON.stringify({ token: TEST_ADMIN_TOKEN }), 'application/json');
  assert.equal(json.status, 204);
  assert.ok(json.headers.get('set-cookie'));
  for (const [body, type] of [[JSON.stringify({ token: 'not-the-token' }), 'application/json'], ['token=not-the-token', 'application/x-www-form-urlencoded']] as const) {
    const refused = await post(body, type);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('set-cookie'), null);
    assert.equal((await refused.json()).type, '/problems/unauthorized');
  }
});

test('no other route takes a form body', async () => {
  const answer = await fetch(`${stack.server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=A&email=a%40example.org&course=x' });
  assert.equal(answer.status, 415);
});
