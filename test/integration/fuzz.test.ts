// A bounded fuzz of every public route (SPEC: no request, however malformed, gets a 500). Cases
// are generated from a seeded PRNG, so a failure reproduces: the seed is printed, and
// FUZZ_SEED=<seed> (and FUZZ_CASES=<n>) replays it. Each case is one request over a real socket
// to the in-process server: random JSON of random shapes, random bytes, strings near the 64 KiB
// limit, deep nesting, unicode oddities, prototype-pollution keys; content-type variants,
// Idempotency-Key and Authorization oddities; odd ids, path segments and query strings.
// Every answer: no 5xx, within the per-request deadline, every error a problem+json, and a
// refused request (or any GET) changed nothing in the database. Some generated requests are valid
// by chance: a 2xx that writes is allowed, and the database is re-read after it.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { after, test } from 'node:test';
import { seededRandom } from '../../bench/rush-workload.ts';
import type { Sql } from '../../src/db/database.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';
import { readStoredState } from '../support/stored-state.ts';

const SEED = process.env['FUZZ_SEED'] ? Number(process.env['FUZZ_SEED']) >>> 0 : randomBytes(4).readUInt32LE(0);
const CASES = Number(process.env['FUZZ_CASES'] ?? 400);
const REQUEST_DEADLINE_MS = 5_000;
const BODY_LIMIT = 64 * 1024;

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const fixture = { open: 'fz-open', full: 'fz-full', queue: 'fz-queue', registration: '', manageToken: '', place: '', queueToken: '', webhook: '', importId: randomUUID() };

const stack = useStack({ poolSize: 5, uploadMaxBytes: 1024 * 1024 }, async (stack) => {
  const c = stack.server.client;
  assert.equal((await c.admin('POST', '/courses', { id: fixture.open, title: 'Open', capacity: 1000, waitlistCapacity: 10 })).status, 201);
  assert.equal((await c.admin('POST', '/courses', { id: fixture.full, title: 'Full', capacity: 1 })).status, 201);
  const registered = await c.register({ name: 'Ada Lovelace', email: 'ada@example.org', course: fixture.full }, { 'idempotency-key': 'fuzz-key-1' });
  assert.equal(registered.status, 201);
  fixture.registration = registered.body.id;
  fixture.manageToken = registered.body.manageToken;
  // No opensAt: its places are ordered at the first join, so no later read writes.
  assert.equal((await c.admin('POST', '/courses', { id: fixture.queue, title: 'Queued', capacity: 5, queue: { order: 'random' } })).status, 201);
  const joined = await c.request('POST', `/courses/${fixture.queue}/queue`, { body: { name: 'Ada Lovelace', email: 'ada@example.org' } });
  assert.equal(joined.status, 201, JSON.stringify(joined.body));
  fixture.place = joined.body.id;
  fixture.queueToken = joined.body.queueToken;
  const webhook = await c.admin('POST', '/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['registration.created'] });
  assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
  fixture.webhook = webhook.body.id;
});

after(() => agent.destroy());

// --- the PRNG and the generators -------------------------------------------------------------


const random = seededRandom(SEED);
const int = (n: number) => Math.floor(random() * n);
const chance = (p: number) => random() < p;
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

const ODD_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff', 'x\ud83d', '\u202e', 'Ada \u2066x\u2069', '\ufeff', '\u200b', '\u0085', '\u001b[31m',
  '𝕏', '👩‍💻', 'e\u0301', 'ß', 'İ', 'ﬀ', 'Ω', '\r\n', '\t', '\\', '"', "'", '`', "'; DROP TABLE courses; --", '%00', '%ZZ', '../../etc/passwd',
  '${jndi:ldap://x/a}', '<script>alert(1)</script>', '{{7*7}}', 'NaN', 'null', 'true', '0', '-1', '1e400', '__proto__', 'constructor',
  'ada@example.org', 'ADA@EXAMPLE.ORG ', 'a@b', 'x@y.z', '@', 'fz-open', 'FZ-OPEN', 'fz-full', '-fz', 'a'.repeat(64), 'a'.repeat(65),
  'registration.created', 'registration.bogus', 'http://127.0.0.1:9/x', 'javascript:alert(1)', 'http://[::1', 'file:///etc/passwd',
  '2030-01-01T00:00:00Z', '2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '9999-12-31T23:00:00-02:00', '2030-02-30T00:00:00Z',
];
const KEYS = ['name', 'email', 'course', 'id', 'title', 'capacity', 'waitlistCapacity', 'opensAt', 'closesAt', 'url', 'events', 'token', 'queue', 'admission',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', ' ', 'x'.repeat(300), '\u0000', '$where', 'a.b', 'a[b]'];

function randomString(): string {
  switch (int(6)) {
    case 0: return pick(ODD_STRINGS);
    case 1: return Array.from({ length: int(40) }, () => String.fromCharCode(32 + int(95))).join('');
    case 2: return Array.from({ length: 1 + int(12) }, () => pick(ODD_STRINGS)).join('');
    case 3: return pick(ODD_STRINGS).repeat(1 + int(300));
    case 4: return Array.from({ length: int(30) }, () => String.fromCharCode(int(0x10000))).join(''); // any UTF-16 unit, surrogates too
    default: return `${pick(['a', 'Ada', 'x.y', 'é'])}@${pick(['example.org', 'b', '-x.org', 'exa mple.org', 'x'.repeat(70) + '.org'])}`;
  }
}

function randomNumber(): number {
  return pick([0, -0, 1, -1, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 1e308, 5e-324, 0.5, 10_000_001, 9_999_999, int(1000), -int(1000), random()]);
}

function randomJson(depth: number): unknown {
  const kind = int(depth > 3 ? 4 : 7);
  switch (kind) {
    case 0: return null;
    case 1: return chance(0.5);
    case 2: return randomNumber();
    case 3: return randomString();
    case 4: return Array.from({ length: int(5) }, () => randomJson(depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) object[pick(KEYS)] = randomJson(depth + 1);
      return object;
    }
  }
}

/** A valid body of the route with one to three fields broken, dropped or added. */
function nearValid(valid: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...valid };
  for (let i = 1 + int(3); i > 0; i--) {
    const key = chance(0.7) ? pick(Object.keys(valid)) : pick(KEYS);
    if (chance(0.2)) delete body[key];
    else body[key] = chance(0.5) ? randomString() : randomJson(2);
  }
  return body;
}

type BodyKind = 'course' | 'patch' | 'register' | 'join' | 'webhook' | 'login' | 'csv' | 'none';

function validBody(kind: BodyKind): Record<string, unknown> {
  switch (kind) {
    case 'course': return { id: `fz-${int(1e6)}`, title: 'A course', capacity: 5, waitlistCapacity: 1, opensAt: null, closesAt: null };
    case 'patch': return { title: 'Renamed', capacity: 1000, waitlistCapacity: 10, opensAt: null, closesAt: null };
    case 'register': return { name: 'Grace Hopper', email: `grace${int(1e6)}@example.org`, course: pick([fixture.open, fixture.queue]), ...(chance(0.3) ? { admission: randomString() } : {}) };
    case 'join': return { name: 'Grace Hopper', email: `grace${int(1e6)}@example.org` };
    case 'webhook': return { url: 'http://127.0.0.1:9/hook', events: ['registration.created'] };
    case 'login': return { token: 'not-the-token' };
    default: return {};
  }
}

/** Nesting deep enough to test recursion limits, small enough for the body limit. */
function deepNesting(): string {
  const depth = pick([100, 1_000, 10_000, 30_000]);
  return chance(0.5) ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(Math.min(depth, 10_000)) + '1' + '}'.repeat(Math.min(depth, 10_000));
}

function randomBody(kind: BodyKind): Buffer | undefined {
  const roll = int(12);
  if (kind === 'csv' && roll < 6) {
    const lines = Array.from({ length: int(6) }, () => Array.from({ length: int(4) }, () => (chance(0.3) ? `"${randomString()}` : randomString())).join(','));
    // Mostly a wrong header; one with extra columns is valid (a 202, allowed like any chance 2xx).
    return Buffer.from([pick(['name,email', 'email,course,nom', '"name', '', '\ufeffname;email;course', 'name,email,course,name']), ...lines].join(pick(['\n', '\r\n', '\r'])));
  }
  switch (roll) {
    case 0: case 1: case 2: return Buffer.from(JSON.stringify(nearValid(validBody(kind))));
    case 3: case 4: return Buffer.from(JSON.stringify(randomJson(0)) ?? 'null');
    case 5: return Buffer.from(deepNesting());
    case 6: return randomBytes(int(2_000));
    case 7: {
      const text = JSON.stringify(nearValid(validBody(kind)));
      return Buffer.from(pick([text.slice(0, int(text.length)), `${text}}`, `\ufeff${text}`, `${text} trailing`, text.replace(':', '::'), 'NaN', '{"a":1,"a":2}', `{"__proto__":{"polluted":1},${text.slice(1)}`, '{"constructor":{"prototype":{"polluted":1}}}']));
    }
    case 8: return Buffer.from(JSON.stringify({ ...validBody(kind), [pick(['name', 'title', 'token', 'url'])]: 'x'.repeat(BODY_LIMIT - 200 + int(400)) }));
    case 9: return Buffer.from(`{"name":"${'\\ud800'.repeat(int(50))}","email":"a\\u0000@b.org","course":"fz-open"}`);
    case 10: return Buffer.alloc(0);
    default: return undefined;
  }
}

/** Percent-encodes the UTF-8 bytes (a lone surrogate becomes U+FFFD; encodeURIComponent throws). */
function pct(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((byte) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

function randomCourseId(): string {
  return pick([fixture.open, fixture.full, fixture.queue, `fz-${int(1000)}`, 'FZ-OPEN', 'a'.repeat(65), 'a'.repeat(150), 'a'.repeat(300), '%00', 'fz%00open', '%ZZ', '..', '%2e%2e', '%2F',
    pct(randomString()), pct('€uro'), '-x', '', 'fz-open%20', '%C0%AF', '%FF%FE']);
}

function randomUuid(): string {
  const known = pick([fixture.registration, fixture.place, fixture.webhook, fixture.importId, randomUUID(), '00000000-0000-0000-0000-000000000000']);
  return pick([known, known, known.toUpperCase(), `urn:uuid:${known}`, `{${known}}`, known.replaceAll('-', ''), `${known}0`, known.slice(1), 'not-a-uuid', '12345', '%00', pct(randomString()), 'ffffffff-ffff-ffff-ffff-ffffffffffff']);
}

function randomQuery(): string {
  const parts: string[] = [];
  for (let i = int(4); i > 0; i--) {
    const key = pick(['limit', 'limit', 'status', 'after', 'after', 'to', 'to', '__proto__', 'constructor', 'limit[]', 'x', '']);
    const value = pick(['0', '1', '5', '-1', '1000', '1001', '1e3', '1.5', 'abc', '', '%00', '%ZZ', '9223372036854775807', '9223372036854775808', '9999999999999999999',
      '99999999999999999999', 'enrolled', 'waitlisted', 'cancelled', 'ENROLLED', pct(randomString()), 'a%00b', 'ada@example.org']);
    parts.push(`${key}=${value}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : pick(['', '?', '?&&', '?=']);
}

type Route = { method: string; path: () => string; body: BodyKind; admin?: boolean; manage?: boolean; register?: boolean };

const ROUTES: Route[] = [
  { method: 'POST', path: () => '/courses', body: 'course', admin: true },
  { method: 'PATCH', path: () => `/courses/${randomCourseId()}`, body: 'patch', admin: true },
  { method: 'GET', path: () => `/courses${randomQuery()}`, body: 'none' },
  { method: 'GET', path: () => `/courses/${randomCourseId()}`, body: 'none' },
  { method: 'POST', path: () => '/register', body: 'register', register: true },
  { method: 'POST', path: () => '/register', body: 'register', register: true },
  { method: 'GET', path: () => `/registrations/${randomUuid()}`, body: 'none', manage: true },
  { method: 'DELETE', path: () => `/registrations/${randomUuid()}`, body: 'none', manage: true },
  { method: 'POST', path: () => `/courses/${chance(0.5) ? fixture.queue : randomCourseId()}/queue`, body: 'join' },
  { method: 'GET', path: () => `/queue/${randomUuid()}`, body: 'none', manage: true },
  { method: 'DELETE', path: () => `/queue/${randomUuid()}`, body: 'none', manage: true },
  { method: 'POST', path: () => `/queue/${chance(0.5) ? fixture.place : randomUuid()}/verify`, body: 'none', manage: true },
  { method: 'GET', path: () => `/courses/${randomCourseId()}/registrations${randomQuery()}`, body: 'none', admin: true },
  { method: 'GET', path: () => `/courses/${randomCourseId()}/registrations.csv${randomQuery()}`, body: 'none', admin: true },
  { method: 'POST', path: () => '/imports', body: 'csv', admin: true },
  { method: 'GET', path: () => `/imports/${randomUuid()}`, body: 'none', admin: true },
  { method: 'GET', path: () => `/imports${randomQuery()}`, body: 'none', admin: true },
  { method: 'POST', path: () => '/webhooks', body: 'webhook', admin: true },
  { method: 'GET', path: () => '/webhooks', body: 'none', admin: true },
  { method: 'DELETE', path: () => `/webhooks/${randomUuid()}`, body: 'none', admin: true },
  { method: 'GET', path: () => `/webhooks/${randomUuid()}/deliveries${randomQuery()}`, body: 'none', admin: true },
  { method: 'GET', path: () => `/admin/mail${randomQuery()}`, body: 'none', admin: true },
  { method: 'GET', path: () => `/admin/jobs${randomQuery()}`, body: 'none', admin: true },
  { method: 'POST', path: () => '/dashboard/login', body: 'login' },
  { method: 'POST', path: () => '/dashboard/logout', body: 'none' },
  { method: 'GET', path: () => '/dashboard/events', body: 'none' },
  { method: 'GET', path: () => pick(['/health', '/metrics', '/openapi.json', '/docs', '/docs/', '/docs/json', '/docs/static/%2e%2e/x', `/manage/${randomUuid()}`, '/manage/manage.js', '/dashboard/dashboard.css']), body: 'none' },
  { method: 'GET', path: () => pick(['/nope', '/courses/', '//courses', '/courses/fz-open/', '/COURSES', '/registrations', '/%', '/a'.repeat(200), `/${pct(randomString())}`]), body: 'none' },
  { method: 'POST', path: () => pick(['/courses/fz-open', '/registrations', '/health', '/admin/mail']), body: 'register' },
];
const ODD_METHODS = ['PUT', 'OPTIONS', 'HEAD', 'PATCH', 'DELETE', 'SEARCH', 'PROPFIND'];
const CONTENT_TYPES = ['application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16',
  'APPLICATION/JSON', 'application/problem+json', 'application/merge-patch+json', 'text/json', 'text/plain', 'text/csv', 'text/csv; charset=latin1',
  'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/json, text/csv', ';;', 'json', '*/*'];

function randomAuthorization(route: Route): string | undefined {
  if (route.admin && chance(0.5)) return `Bearer ${TEST_ADMIN_TOKEN}`;
  if (route.manage && chance(0.3)) return `Bearer ${pick([fixture.manageToken, fixture.queueToken, TEST_ADMIN_TOKEN])}`;
  return pick([undefined, undefined, 'Bearer', 'Bearer ', `Basic ${TEST_ADMIN_TOKEN}`, `bearer ${TEST_ADMIN_TOKEN}x`, `Bearer ${TEST_ADMIN_TOKEN} ${TEST_ADMIN_TOKEN}`,
    `Bearer ${'A'.repeat(4000)}`, 'Bearer \u00ff\u00fe', `Bearer ${fixture.manageToken.slice(0, -1)}`, 'Bearer ../../', 'Digest x', `Bearer ${randomBytes(32).toString('base64url')}`]);
}

type Case = { n: number; method: string; path: string; headers: Record<string, string>; body: Buffer | undefined };

function generate(n: number): Case {
  const route = pick(ROUTES);
  const method = chance(0.05) ? pick(ODD_METHODS) : route.method;
  const headers: Record<string, string> = {};
  const body = method === 'GET' || method === 'HEAD' ? (chance(0.1) ? randomBody(route.body) : undefined) : randomBody(route.body);
  if (body !== undefined || chance(0.1)) {
    const type = route.body === 'csv' && chance(0.6) ? 'text/csv' : pick(CONTENT_TYPES);
    if (!chance(0.05)) headers['content-type'] = type;
  }
  const authorization = randomAuthorization(route);
  if (authorization !== undefined) headers['authorization'] = authorization;
  if (route.register && chance(0.5)) {
    headers['idempotency-key'] = pick(['fuzz-key-1', 'fuzz-key-1', `key-${int(50)}`, '', ' ', 'two words', 'k'.repeat(255), 'k'.repeat(256), 'k'.repeat(5000), '\u00e9t\u00e9', '\t', 'a\u00a0', randomUUID()]);
  }
  if (chance(0.1)) headers['cookie'] = pick(['registrar_dashboard=1.2', `registrar_dashboard=${'9'.repeat(20)}.abc`, 'registrar_dashboard=', '=;;=', 'a=b; registrar_dashboard=99999999999.x']);
  if (chance(0.05)) headers['content-encoding'] = pick(['gzip', 'br', 'identity', 'bogus']);
  if (chance(0.05)) headers['accept'] = pick(['text/csv', 'application/xml', '*/*;q=0', '']);
  if (chance(0.05)) headers['x-forwarded-for'] = pick(['1.2.3.4', 'garbage', '::1, 10.0.0.1']);
  return { n, method, path: route.path(), headers, body };
}

function describeCase(c: Case): string {
  const preview = c.body === undefined ? 'no body' : `${c.body.length} bytes: ${JSON.stringify(c.body.subarray(0, 300).toString('latin1'))}`;
  return `case #${c.n} (FUZZ_SEED=${SEED}): ${c.method} ${c.path.slice(0, 300)} ${JSON.stringify(Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, v.slice(0, 120)])))} ${preview}`;
}

// --- sending, and what the database holds --------------------------------------------------

type Reply = { status: number; type: string; text: string };

function send(c: Case): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(stack.server.url);
    const headers: Record<string, string> = { ...c.headers };
    if (c.body !== undefined) headers['content-length'] = String(c.body.length);
    const req = request({ host: url.hostname, port: url.port, method: c.method, path: c.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_DEADLINE_MS, () => req.destroy(new Error(`no answer within ${REQUEST_DEADLINE_MS} ms`)));
    req.on('error', reject);
    req.end(c.body);
  });
}

// rate_limit_windows is left out: wrong tokens are counted there (the failure budget), on purpose.
const snapshot = (sql: Sql) => readStoredState(sql, ['rate_limit_windows']);

function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys({ ...before, ...after }).filter((name) => before[name] !== after[name]);
}

// -------------------------------------------------------------------------------------------

test(`fuzz: ${CASES} malformed requests over every public route: no 5xx, no hang, problem+json, nothing changed`, { timeout: 120_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} FUZZ_CASES=${CASES}`);
  console.log(`# fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
  let state = await snapshot(stack.db.sql);
  const statuses: Record<string, number> = {};
  let writes = 0;
  for (let n = 0; n < CASES; n++) {
    const c = generate(n);
    let reply: Reply;
    try {
      reply = await send(c);
    } catch (error) {
      assert.fail(`${describeCase(c)}\n-> no answer: ${String(error)}`);
    }
    statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
    const context = `${describeCase(c)}\n-> ${reply.status} ${reply.type} ${reply.text.slice(0, 500)}`;
    assert.ok(reply.status >= 200 && reply.status < 500, `a ${reply.status} is a bug: ${context}`);

    if (reply.status >= 400) {
      // The dashboard's own page answers its login form (HTML) with 401: for browsers, by design.
      const dashboardPage = c.path.split('?')[0] === '/dashboard' && reply.status === 401 && reply.type.startsWith('text/html');
      if (!dashboardPage) {
        assert.match(reply.type, /^application\/problem\+json/, `an error answer that is not problem+json: ${context}`);
        if (c.method !== 'HEAD') {
          const problem = JSON.parse(reply.text) as { type?: unknown; title?: unknown; status?: unknown; detail?: unknown };
          assert.ok(typeof problem.type === 'string' && problem.type.startsWith('/problems/'), context);
          assert.equal(problem.status, reply.status, context);
          assert.ok(typeof problem.title === 'string' && typeof problem.detail === 'string', context);
          assert.doesNotMatch(reply.text, /\n\s+at |node_modules|\.ts:\d+|syntax error|violates|SQLSTATE|relation "/i, `an error answer leaks internals: ${context}`);
        }
      }
    }

    const now = await snapshot(stack.db.sql);
    const changed = changedTables(state, now);
    const writing = reply.status < 300 && !['GET', 'HEAD', 'OPTIONS'].includes(c.method);
    if (writing) {
      if (changed.length > 0) writes += 1; // valid by chance: a 2xx that wrote
    } else {
      assert.deepEqual(changed, [], `a request answered ${reply.status} changed the database: ${context}`);
    }
    state = now;
  }
  t.diagnostic(`answers by status: ${JSON.stringify(statuses)}; ${writes} requests were valid by chance and wrote`);
});
