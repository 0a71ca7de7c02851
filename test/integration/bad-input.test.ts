// Owns bad input: every route is sent malformed, invalid or unauthorized requests over real HTTP and must answer the right 4xx problem and change nothing.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Sql } from '../../src/db/database.ts';
import { type Answer, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';
import { readStoredState } from '../support/stored-state.ts';

/** Tokens of two registrations made before the tests; the table refers to them by name. */
const fixture = { reg: { id: '', manageToken: '' }, other: { id: '', manageToken: '' } };
const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';
const IDEMPOTENCY_KEY = 'bad-input-key-1';
const SQL_TEXT = "'; DROP TABLE courses; --";
const HOUR = 3_600_000;

const stack = useStack({ poolSize: 5 }, async (stack) => {
  const c = stack.server.client;
  const now = Date.now();
  for (const course of [
    { id: 'bi-open', title: 'Open, full', capacity: 2 },
    { id: 'bi-roomy', title: 'Open, room to spare', capacity: 100 },
    { id: 'bi-future', title: 'Opens tomorrow', capacity: 5, opensAt: new Date(now + 24 * HOUR).toISOString() },
    { id: 'bi-past', title: 'Closed yesterday', capacity: 5, closesAt: new Date(now - 24 * HOUR).toISOString() },
  ]) assert.equal((await c.admin('POST', '/courses', course)).status, 201);
  const reg = await c.register({ name: 'Ada Lovelace', email: 'ada@example.org', course: 'bi-open' }, { 'idempotency-key': IDEMPOTENCY_KEY });
  const other = await c.register({ name: 'Grace Hopper', email: 'grace@example.org', course: 'bi-open' });
  assert.equal(reg.status, 201);
  assert.equal(other.status, 201);
  fixture.reg = reg.body;
  fixture.other = other.body;
});

// rate_limit_windows is left out: wrong tokens are counted there (the failure budget), on purpose.
const snapshot = (sql: Sql) => readStoredState(sql, ['rate_limit_windows']);

const PROBLEM_KEYS = new Set(['type', 'title', 'status', 'detail', 'errors']);
/** Every error answer seen, for the leak check at the end. */
const errorAnswers: { label: string; answer: Answer }[] = [];

function assertProblem(answer: Answer, status: number, slug: string, field?: string): void {
  const shown = JSON.stringify(answer.body);
  assert.ok(answer.status < 500, `a ${answer.status} is a bug: ${shown}`);
  assert.equal(answer.status, status, shown);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = answer.body;
  assert.equal(body.type, `/problems/${slug}`, shown);
  assert.equal(body.status, status);
  assert.ok(typeof body.title === 'string' && body.title.length > 0, shown);
  assert.ok(typeof body.detail === 'string' && body.detail.length > 0, shown);
  assert.deepEqual(Object.keys(body).filter((key) => !PROBLEM_KEYS.has(key)), [], shown);
  if (body.errors !== undefined) {
    assert.ok(Array.isArray(body.errors) && body.errors.length > 0, shown);
    for (const e of body.errors) assert.ok(typeof e.field === 'string' && typeof e.message === 'string', shown);
  }
  if (field !== undefined) assert.ok(body.errors?.some((e: { field: string }) => e.field === field), `no error for ${field}: ${shown}`);
  if (status === 401) assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer/);
}

type Credential = 'admin' | 'reg' | 'other' | 'reg-basic' | 'none' | { authorization: string };
type Case = {
  name: string;
  method: string;
  path: string; // ':reg' and ':other' stand for the fixture registrations' ids
  body?: unknown; // sent as JSON
  raw?: string; // sent as is, with `type` as its content type
  type?: string;
  auth?: Credential; // default: the admin token, so that only the thing under test is wrong
  headers?: Record<string, string>;
  expect: [status: number, slug: string, field?: string];
};

const ada = { name: 'Ada Lovelace', email: 'ada@example.org', course: 'bi-roomy' };
const course = { id: 'bi-new', title: 'New course', capacity: 10 };
const json = 'application/json';
const huge = 'x'.repeat(70 * 1024); // over the 64 KiB body limit
const tooLongEmail = `${'a'.repeat(65)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.org`; // 255 characters

const V = (field?: string): Case['expect'] => (field === undefined ? [400, 'validation'] : [400, 'validation', field]);
const UNAUTHORIZED: Case['expect'] = [401, 'unauthorized'];

const cases: Case[] = [
  // Bodies that are not a JSON object, on each route that takes one.
  ...(['/courses', '/register', '/courses/bi-roomy'] as const).flatMap((path): Case[] => {
    const method = path === '/courses/bi-roomy' ? 'PATCH' : 'POST';
    return [
      { name: 'malformed JSON', method, path, raw: '{"capacity": 5,', type: json, expect: V() },
      { name: 'empty body with a JSON content type', method, path, raw: '', type: json, expect: V() },
      { name: 'no body at all', method, path, expect: V('(body)') },
      { name: 'a JSON array', method, path, raw: '[{"capacity": 5}]', type: json, expect: V('(body)') },
      { name: 'a JSON string', method, path, raw: '"capacity"', type: json, expect: V('(body)') },
      { name: 'a JSON number', method, path, raw: '42', type: json, expect: V('(body)') },
      { name: 'JSON null', method, path, raw: 'null', type: json, expect: V('(body)') },
      { name: '__proto__ key (prototype poisoning)', method, path, raw: '{"__proto__": {"admin": true}}', type: json, expect: V() },
      { name: 'text/plain', method, path, raw: '{"capacity": 5}', type: 'text/plain', expect: [415, 'unsupported-media-type'] },
      { name: 'form encoded', method, path, raw: 'capacity=5', type: 'application/x-www-form-urlencoded', expect: [415, 'unsupported-media-type'] },
      { name: 'body over 64 KiB', method, path, body: { ...course, ...ada, title: huge, name: huge }, expect: [413, 'payload-too-large'] },
    ];
  }),

  // POST /courses (admin)
  { name: 'capacity as a string', method: 'POST', path: '/courses', body: { ...course, capacity: '100' }, expect: V('capacity') },
  { name: 'capacity -1', method: 'POST', path: '/courses', body: { ...course, capacity: -1 }, expect: V('capacity') },
  { name: 'capacity 1.5', method: 'POST', path: '/courses', body: { ...course, capacity: 1.5 }, expect: V('capacity') },
  { name: 'capacity null', method: 'POST', path: '/courses', body: { ...course, capacity: null }, expect: V('capacity') },
  { name: 'capacity over ten million', method: 'POST', path: '/courses', body: { ...course, capacity: 10_000_001 }, expect: V('capacity') },
  { name: 'capacity 1e400 (Infinity once parsed)', method: 'POST', path: '/courses', raw: '{"id": "bi-new", "title": "x", "capacity": 1e400}', type: json, expect: V('capacity') },
  { name: 'waitlistCapacity -1', method: 'POST', path: '/courses', body: { ...course, waitlistCapacity: -1 }, expect: V('waitlistCapacity') },
  { name: 'title a number', method: 'POST', path: '/courses', body: { ...course, title: 123 }, expect: V('title') },
  { name: 'title empty', method: 'POST', path: '/courses', body: { ...course, title: '' }, expect: V('title') },
  { name: 'title 201 characters', method: 'POST', path: '/courses', body: { ...course, title: 't'.repeat(201) }, expect: V('title') },
  { name: 'title with a NUL byte', method: 'POST', path: '/courses', body: { ...course, title: 'Intro\u0000' }, expect: V('title') },
  { name: 'id missing', method: 'POST', path: '/courses', body: { title: 'x', capacity: 1 }, expect: V('id') },
  { name: 'capacity missing', method: 'POST', path: '/courses', body: { id: 'bi-new', title: 'x' }, expect: V('capacity') },
  { name: 'unknown extra field', method: 'POST', path: '/courses', body: { ...course, price: 10 }, expect: V('price') },
  { name: 'id with uppercase', method: 'POST', path: '/courses', body: { ...course, id: 'CS101' }, expect: V('id') },
  { name: 'id with SQL', method: 'POST', path: '/courses', body: { ...course, id: SQL_TEXT }, expect: V('id') },
  { name: 'id starting with a dash', method: 'POST', path: '/courses', body: { ...course, id: '-cs101' }, expect: V('id') },
  { name: 'id of 65 characters', method: 'POST', path: '/courses', body: { ...course, id: 'a'.repeat(65) }, expect: V('id') },
  { name: 'opensAt not a date', method: 'POST', path: '/courses', body: { ...course, opensAt: 'tomorrow' }, expect: V('opensAt') },
  { name: 'opensAt without a time zone', method: 'POST', path: '/courses', body: { ...course, opensAt: '2030-01-01T09:00:00' }, expect: V('opensAt') },
  { name: 'opensAt a leap second', method: 'POST', path: '/courses', body: { ...course, opensAt: '2016-12-31T23:59:60Z' }, expect: V('opensAt') },
  { name: 'opensAt in year 0000', method: 'POST', path: '/courses', body: { ...course, opensAt: '0000-01-01T00:00:00Z' }, expect: V('opensAt') },
  { name: 'closesAt past year 9999 in UTC', method: 'POST', path: '/courses', body: { ...course, closesAt: '9999-12-31T23:00:00-02:00' }, expect: V('closesAt') },
  { name: 'opensAt after closesAt', method: 'POST', path: '/courses', body: { ...course, opensAt: '2030-02-01T00:00:00Z', closesAt: '2030-01-01T00:00:00Z' }, expect: V() },
  { name: 'an existing id', method: 'POST', path: '/courses', body: { ...course, id: 'bi-open' }, expect: [409, 'conflict'] },

  // PATCH /courses/{id} (admin)
  { name: 'empty object', method: 'PATCH', path: '/courses/bi-roomy', body: {}, expect: V() },
  { name: 'capacity below enrolled', method: 'PATCH', path: '/courses/bi-open', body: { capacity: 1 }, expect: [409, 'conflict'] },
  { name: 'opensAt after closesAt', method: 'PATCH', path: '/courses/bi-roomy', body: { opensAt: '2030-02-01T00:00:00Z', closesAt: '2030-01-01T00:00:00Z' }, expect: V() },
  { name: 'closesAt before the stored opensAt', method: 'PATCH', path: '/courses/bi-future', body: { closesAt: '2001-01-01T00:00:00Z' }, expect: V() },
  { name: 'capacity as a string', method: 'PATCH', path: '/courses/bi-roomy', body: { capacity: '5' }, expect: V('capacity') },
  { name: 'the id is not changeable', method: 'PATCH', path: '/courses/bi-roomy', body: { id: 'renamed' }, expect: V('id') },
  { name: 'unknown course', method: 'PATCH', path: '/courses/no-such-course', body: { capacity: 5 }, expect: [404, 'not-found'] },
  { name: 'course id with uppercase', method: 'PATCH', path: '/courses/BI-ROOMY', body: { capacity: 5 }, expect: V('params.id') },

  // POST /register (public)
  { name: 'name a number', method: 'POST', path: '/register', body: { ...ada, name: 123 }, expect: V('name') },
  { name: 'email null', method: 'POST', path: '/register', body: { ...ada, email: null }, expect: V('email') },
  { name: 'email missing', method: 'POST', path: '/register', body: { name: ada.name, course: ada.course }, expect: V('email') },
  { name: 'every field missing', method: 'POST', path: '/register', body: {}, expect: V('course') },
  { name: 'unknown extra field', method: 'POST', path: '/register', body: { ...ada, role: 'admin' }, expect: V('role') },
  { name: 'name of 201 characters', method: 'POST', path: '/register', body: { ...ada, name: 'n'.repeat(201) }, expect: V('name') },
  { name: 'name only spaces', method: 'POST', path: '/register', body: { ...ada, name: '   ' }, expect: V('name') },
  { name: 'email of 255 characters', method: 'POST', path: '/register', body: { ...ada, email: tooLongEmail }, expect: V('email') },
  ...['ada', 'ada@', '@example.org', 'ada @example.org', 'ada@exa mple.org', 'ada@@example.org', 'ada@example..org', 'ada@-example.org', 'ада@example.org', 'ada@example.org\u0000']
    .map((email): Case => ({ name: `email ${JSON.stringify(email)}`, method: 'POST', path: '/register', body: { ...ada, email }, expect: V('email') })),
  ...[['a NUL byte', 'Ada\u0000'], ['a lone surrogate', 'Ada \ud800'], ['a BEL', 'Ada\u0007'], ['an ANSI escape', '\u001b[31mAda'], ['a C1 control (NEL)', 'Ada\u0085'], ['an RTL override', 'Ada \u202Eexe.gpj'], ['a bidi isolate', 'Ada \u2067x\u2069']]
    .map(([what, name]): Case => ({ name: `name with ${what}`, method: 'POST', path: '/register', body: { ...ada, name }, expect: V('name') })),
  { name: 'course id with SQL', method: 'POST', path: '/register', body: { ...ada, course: SQL_TEXT }, expect: V('course') },
  { name: 'course id with uppercase', method: 'POST', path: '/register', body: { ...ada, course: 'BI-ROOMY' }, expect: V('course') },
  { name: 'unknown course', method: 'POST', path: '/register', body: { ...ada, course: 'no-such-course' }, expect: [404, 'not-found'] },
  { name: 'full course', method: 'POST', path: '/register', body: { ...ada, course: 'bi-open', email: 'late@example.org' }, expect: [409, 'course-full'] },
  { name: 'before opensAt', method: 'POST', path: '/register', body: { ...ada, course: 'bi-future' }, expect: [409, 'registration-closed'] },
  { name: 'after closesAt', method: 'POST', path: '/register', body: { ...ada, course: 'bi-past' }, expect: [409, 'registration-closed'] },
  { name: 'Idempotency-Key reused with another body', method: 'POST', path: '/register', headers: { 'idempotency-key': IDEMPOTENCY_KEY }, body: { ...ada, course: 'bi-open', name: 'Ada King' }, expect: [422, 'validation'] },
  { name: 'Idempotency-Key of 256 characters', method: 'POST', path: '/register', headers: { 'idempotency-key': 'k'.repeat(256) }, body: ada, expect: V('headers.idempotency-key') },
  { name: 'Idempotency-Key with a space', method: 'POST', path: '/register', headers: { 'idempotency-key': 'two words' }, body: ada, expect: V('headers.idempotency-key') },

  // GET /courses/{id} (public)
  { name: 'unknown course', method: 'GET', path: '/courses/no-such-course', expect: [404, 'not-found'] },
  { name: 'id with uppercase', method: 'GET', path: '/courses/CS101', expect: V('params.id') },
  { name: 'id with SQL', method: 'GET', path: `/courses/${encodeURIComponent(SQL_TEXT)}`, expect: V('params.id') },
  { name: 'id with a NUL byte', method: 'GET', path: '/courses/cs%00101', expect: V('params.id') },
  { name: 'undecodable percent escape', method: 'GET', path: '/courses/%ZZ', expect: V() },
  { name: 'id longer than the router allows', method: 'GET', path: `/courses/${'a'.repeat(150)}`, expect: [414, 'validation'] },
  { name: 'request line over the 16 KiB of headers', method: 'GET', path: `/courses/${'a'.repeat(20_000)}`, expect: [431, 'headers-too-large'] },

  // GET /courses/{id}/registrations and .csv (admin)
  ...['limit=0', 'limit=abc', 'limit=1001', 'limit=1&limit=2', 'status=bogus', 'after=-1', 'after=abc', 'after=9999999999999999999', 'sort=name']
    .map((query): Case => ({ name: `?${query}`, method: 'GET', path: `/courses/bi-open/registrations?${query}`, expect: V(`querystring.${query.split('=')[0]}`) })),
  { name: '?status=bogus', method: 'GET', path: '/courses/bi-open/registrations.csv?status=bogus', expect: V('querystring.status') },
  { name: 'unknown course', method: 'GET', path: '/courses/no-such-course/registrations', expect: [404, 'not-found'] },
  { name: 'unknown course', method: 'GET', path: '/courses/no-such-course/registrations.csv', expect: [404, 'not-found'] },
  ...(['/courses', '/courses/bi-roomy', '/courses/bi-open/registrations', '/courses/bi-open/registrations.csv'] as const).flatMap((path): Case[] => {
    const method = path === '/courses' ? 'POST' : path === '/courses/bi-roomy' ? 'PATCH' : 'GET';
    const body = method === 'GET' ? undefined : { ...course, capacity: 5 };
    return [
      { name: 'no token', method, path, body, auth: 'none', expect: UNAUTHORIZED },
      { name: 'wrong token', method, path, body, auth: { authorization: 'Bearer not-the-admin-token' }, expect: UNAUTHORIZED },
      { name: 'a manage token', method, path, body, auth: 'reg', expect: UNAUTHORIZED },
      { name: 'the admin token with the Basic scheme', method, path, body, auth: { authorization: `Basic ${TEST_ADMIN_TOKEN}` }, expect: UNAUTHORIZED },
      { name: 'Bearer with no token', method, path, body, auth: { authorization: 'Bearer' }, expect: UNAUTHORIZED },
      { name: 'the admin token with a suffix', method, path, body, auth: { authorization: `Bearer ${TEST_ADMIN_TOKEN}x` }, expect: UNAUTHORIZED },
    ];
  }),

  // GET and DELETE /registrations/{id} (manage token or admin)
  ...(['GET', 'DELETE'] as const).flatMap((method): Case[] => [
    { name: 'id not a UUID', method, path: '/registrations/12345', expect: V('params.id') },
    { name: 'id a urn:uuid', method, path: `/registrations/urn:uuid:${UNKNOWN_UUID}`, expect: V('params.id') },
    { name: 'id with SQL', method, path: `/registrations/${encodeURIComponent(SQL_TEXT)}`, expect: V('params.id') },
    { name: 'unknown UUID with the admin token', method, path: `/registrations/${UNKNOWN_UUID}`, expect: [404, 'not-found'] },
    { name: 'no token', method, path: '/registrations/:reg', auth: 'none', expect: UNAUTHORIZED },
    { name: 'wrong token', method, path: '/registrations/:reg', auth: { authorization: 'Bearer not-a-manage-token' }, expect: UNAUTHORIZED },
    { name: 'the manage token of another registration', method, path: '/registrations/:reg', auth: 'other', expect: UNAUTHORIZED },
    { name: 'its own token with the Basic scheme', method, path: '/registrations/:reg', auth: 'reg-basic', expect: UNAUTHORIZED },
  ]),
  { name: 'malformed JSON body', method: 'DELETE', path: '/registrations/:reg', raw: '{"reason":', type: json, expect: V() },

  // No such route
  { name: 'unknown path', method: 'GET', path: '/nope', expect: [404, 'not-found'] },
  { name: 'unknown method', method: 'PUT', path: '/courses/bi-roomy', body: { capacity: 5 }, expect: [404, 'not-found'] },
  { name: 'registrations without an id', method: 'GET', path: '/registrations', expect: [404, 'not-found'] },
  { name: 'POST to a registration', method: 'POST', path: '/registrations/:reg', body: {}, expect: [404, 'not-found'] },
];

function authorizationOf(auth: Credential): string | undefined {
  if (typeof auth === 'object') return auth.authorization;
  switch (auth) {
    case 'admin': return `Bearer ${TEST_ADMIN_TOKEN}`;
    case 'reg': return `Bearer ${fixture.reg.manageToken}`;
    case 'other': return `Bearer ${fixture.other.manageToken}`;
    case 'reg-basic': return `Basic ${fixture.reg.manageToken}`;
    case 'none': return undefined;
  }
}

function send(c: Case): Promise<Answer> {
  const headers: Record<string, string> = { ...c.headers };
  const authorization = authorizationOf(c.auth ?? 'admin');
  if (authorization !== undefined) headers['authorization'] = authorization;
  if (c.type !== undefined) headers['content-type'] = c.type;
  const path = c.path.replace(':reg', fixture.reg.id).replace(':other', fixture.other.id);
  return stack.server.client.request(c.method, path, { headers, ...(c.raw !== undefined ? { raw: c.raw } : {}), ...(c.body !== undefined ? { body: c.body } : {}) });
}

describe('bad input gets its 4xx problem and changes nothing', () => {
  for (const c of cases) {
    const label = `${c.method} ${c.path.length > 200 ? `${c.path.slice(0, 40)}... (${c.path.length} characters)` : c.path}: ${c.name} -> ${c.expect[0]} ${c.expect[1]}`;
    test(label, async () => {
      const before = await snapshot(stack.db.sql);
      const answer = await send(c);
      errorAnswers.push({ label, answer });
      assertProblem(answer, ...c.expect);
      assert.deepEqual(await snapshot(stack.db.sql), before, 'a refused request changed the database');
    });
  }
});

describe('no error answer leaks internals', () => {
  const LEAKS = [/\n\s+at /, /\bat [\w.<>$]+ \(/, /\.[cm]?[jt]s:\d+/, /node_modules/, /\b(SELECT|INSERT|UPDATE|DELETE FROM|DROP TABLE)\b/, /postgres|sqlstate|syntax error|violates|constraint|relation "/i, /registrar_\w+\(/];
  test('no stack trace, SQL or database message in any error body', () => {
    assert.equal(errorAnswers.length, cases.length, 'the table above ran first');
    for (const { label, answer } of errorAnswers) {
      const text = JSON.stringify(answer.body) + (answer.headers.get('x-powered-by') ?? '');
      for (const leak of LEAKS) assert.doesNotMatch(text, leak, `${label} leaks: ${text}`);
    }
  });
});

describe('odd but valid input is accepted and stored literally', () => {
  const accepted: [what: string, name: string][] = [
    ['emoji, with a ZWJ sequence', '👩‍💻 Ada 🎓 Lovelace'],
    ['SQL', SQL_TEXT],
    ['quotes and backslashes', 'O\'Brien "Bob" \\ %_ $1'],
    ['a right-to-left script', 'آدا لاوليس'],
    ['combining marks', 'Zoë Åsa Nguyễn'],
    ['exactly 200 characters', 'n'.repeat(200)],
  ];
  for (const [what, name] of accepted) {
    test(`a name with ${what} -> 201`, async () => {
      const email = `ok-${accepted.findIndex(([w]) => w === what)}@example.org`;
      const answer = await stack.server.client.register({ name, email, course: 'bi-roomy' });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal(answer.body.name, name);
      const [row] = await stack.db.sql<{ name: string }[]>`SELECT name FROM registrations WHERE id = ${answer.body.id}`;
      assert.equal(row?.name, name);
      const own = await stack.server.client.request('GET', `/registrations/${answer.body.id}`, { token: answer.body.manageToken });
      assert.equal(own.body.name, name);
    });
  }

  test('an email of exactly 254 characters -> 201', async () => {
    const email = tooLongEmail.slice(1);
    assert.equal(email.length, 254);
    const answer = await stack.server.client.register({ name: 'Long Address', email, course: 'bi-roomy' });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.email, email);
  });

  test('a course title with SQL and emoji -> 201, and every table is still there', async () => {
    const title = `${SQL_TEXT} 🎓 Robert'); DROP TABLE registrations;--`;
    const answer = await stack.server.client.admin('POST', '/courses', { id: 'bi-sql-title', title, capacity: 1 });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal((await stack.server.client.request('GET', '/courses/bi-sql-title')).body.title, title);
    const [tables] = await stack.db.sql<{ courses: string | null; registrations: string | null }[]>`
      SELECT to_regclass('courses')::text AS courses, to_regclass('registrations')::text AS registrations`;
    assert.deepEqual({ ...tables }, { courses: 'courses', registrations: 'registrations' });
  });
});
