// Bulk import through the real pipeline: upload over HTTP, the import_csv job, the thread pool,
// the batch writer; then the registrations in the database. CSV edge cases each with their
// expected result, the rules of POST /register, and an import racing live registrations.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants, waitlistPositions } from '../support/invariants.ts';
import { useStack } from '../support/stack.ts';

// Small chunks, so even these files are cut into several chunks parsed in parallel.
const stack = useStack({ uploadMaxBytes: 4 * 1024 * 1024, runners: { importThreads: 2, importChunkBytes: 4 * 1024 } });

function upload(csv: string | Buffer) {
  return stack.server.client.request('POST', '/imports', { raw: csv as string, token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'text/csv' } });
}

async function importAndWait(csv: string | Buffer) {
  const accepted = await upload(csv);
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  assert.equal(accepted.body.status, 'queued');
  const deadline = Date.now() + 120_000;
  for (;;) {
    const state = (await stack.server.client.admin('GET', `/imports/${accepted.body.id}`)).body;
    if (state.status === 'done' || state.status === 'failed') return state;
    assert.ok(Date.now() < deadline, `import still ${state.status} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stored(course: string) {
  return stack.db.sql<{ name: string; email: string; status: string }[]>`SELECT name, email, status FROM registrations WHERE course_id = ${course} ORDER BY seq`;
}

describe('CSV edge cases', () => {
  test('a BOM, CRLF, reordered and extra columns, quoted commas, quotes and newlines, blank lines, trailing spaces', async () => {
    const course = await newCourse(stack.server.client, { capacity: 20 });
    const csv = '\uFEFF' + [
      'Email, NOTES ,Course,Name',
      `ada@example.org,"first, of all",${course},Ada Lovelace`,
      `"grace@example.org","said ""hello""",${course},"Hopper, Grace"`,
      `alan@example.org,"line one`,
      `line two",${course},Alan Turing`,
      '',
      `  emmy@example.org  ,,${course}  ,  Emmy Noether  `,
      '   ',
      `kat@example.org,x,${course},Katherine Johnson`,
    ].join('\r\n') + '\r\n';
    const result = await importAndWait(csv);
    assert.equal(result.status, 'done', result.failure);
    assert.deepEqual({ rows: result.rows, created: result.created, rejected: result.rejected, existing: result.existing }, { rows: 5, created: 5, rejected: 0, existing: 0 });
    assert.deepEqual((await stored(course)).map((r) => [r.name, r.email]), [
      ['Ada Lovelace', 'ada@example.org'],
      ['Hopper, Grace', 'grace@example.org'],
      ['Alan Turing', 'alan@example.org'],
      ['Emmy Noether', 'emmy@example.org'],
      ['Katherine Johnson', 'kat@example.org'],
    ]);
  });

  test('a wrong row is reported by its line and does not stop the others', async () => {
    const course = await newCourse(stack.server.client, { capacity: 20 });
    const csv = [
      'name,email,course',
      `Good One,one@example.org,${course}`,
      `Bad Email,not-an-email,${course}`,
      `,empty-name@example.org,${course}`,
      `Unknown Course,u@example.org,no-such-course`,
      `Bad Id,b@example.org,NOT VALID`,
      `Good Two,two@example.org,${course}`,
    ].join('\n');
    const result = await importAndWait(csv);
    assert.equal(result.status, 'done');
    assert.deepEqual({ created: result.created, rejected: result.rejected }, { created: 2, rejected: 4 });
    assert.deepEqual(result.errors.map((e: { line: number }) => e.line), [3, 4, 5, 6]);
    assert.match(result.errors[0].message, /email/);
    assert.match(result.errors[2].message, /no course "no-such-course"/);
  });

  test('rows for a course with a waiting room are rejected as not admitted; the other rows go in', async () => {
    const queued = await newCourse(stack.server.client, { capacity: 20, queue: { order: 'arrival' } });
    const open = await newCourse(stack.server.client, { capacity: 20 });
    const result = await importAndWait(['name,email,course', `Queued One,q1@example.org,${queued}`, `Open One,o1@example.org,${open}`, `Queued Two,q2@example.org,${queued}`].join('\n'));
    assert.equal(result.status, 'done', JSON.stringify(result));
    assert.deepEqual({ created: result.created, rejected: result.rejected }, { created: 1, rejected: 2 });
    assert.deepEqual(result.errors.map((e: { line: number }) => e.line), [2, 4]);
    assert.match(result.errors[0].message, /waiting room/);
    assert.equal((await stored(queued)).length, 0);
    assert.equal((await stored(open)).length, 1);
  });

  test('duplicates inside the file and against existing registrations count as existing, once each', async () => {
    const course = await newCourse(stack.server.client, { capacity: 20 });
    assert.equal((await stack.server.client.register(student(course, 1))).status, 201);
    const csv = ['name,email,course', `Again,S1@Example.org,${course}`, `New,new@example.org,${course}`, `New Twice, NEW@example.org ,${course}`].join('\n');
    const result = await importAndWait(csv);
    assert.deepEqual({ created: result.created, existing: result.existing }, { created: 1, existing: 2 });
    assert.equal((await stored(course)).length, 2);
  });

  test('a file that overfills a course: exact seats, a full waitlist in file order, the rest rejected as full', async () => {
    const course = await newCourse(stack.server.client, { capacity: 30, waitlistCapacity: 10 });
    const lines = ['name,email,course', ...Array.from({ length: 100 }, (_, i) => `Student ${i},over${i}@example.org,${course}`)];
    const result = await importAndWait(lines.join('\n'));
    assert.deepEqual({ created: result.created, waitlisted: result.waitlisted, rejected: result.rejected }, { created: 40, waitlisted: 10, rejected: 60 });
    const rows = await stored(course);
    assert.deepEqual(rows.filter((r) => r.status === 'enrolled').map((r) => r.email), Array.from({ length: 30 }, (_, i) => `over${i}@example.org`));
    assert.deepEqual(rows.filter((r) => r.status === 'waitlisted').map((r) => r.email), Array.from({ length: 10 }, (_, i) => `over${30 + i}@example.org`));
    assert.deepEqual(await waitlistPositions(stack.db.sql, course), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.match(result.errors[0].message, /full/);
    // Each created registration was announced like one made over HTTP.
    const [events] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registration_events WHERE course_id = ${course}`;
    assert.equal(events!.n, 40);
    await assertInvariants(stack.db.sql);
  });
});

describe('refused uploads leave nothing behind', () => {
  test('a missing header column, an empty file, a wrong content type, no token, too large', async () => {
    const before_ = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM imports`;
    const bad = await upload('name,mail,course\nA,a@example.org,x\n');
    assert.equal(bad.status, 400);
    assert.match(bad.body.detail, /missing email/);
    assert.equal((await upload('')).status, 400);
    assert.equal((await stack.server.client.request('POST', '/imports', { raw: 'name,email,course\n', token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'application/octet-stream' } })).status, 415);
    assert.equal((await stack.server.client.request('POST', '/imports', { raw: 'name,email,course\n', headers: { 'content-type': 'text/csv' } })).status, 401);
    const tooLarge = await upload('name,email,course\n' + 'x,x@example.org,c\n'.repeat(300_000));
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.body.type, '/problems/payload-too-large');
    const after_ = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM imports`;
    assert.equal(after_[0]!.n, before_[0]!.n);
    // The imports before this one have ended, and an ended import's file is deleted.
    const files = await readdir(path.join(stack.dataDir, 'uploads')).catch(() => []);
    const [kept] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM imports WHERE status IN ('queued', 'running')`;
    assert.equal(files.length, kept!.n, 'only accepted imports not yet ended keep a file');
  });
});

test('an import running while 200 students register over HTTP for the same course keeps every invariant', async () => {
  const course = await newCourse(stack.server.client, { capacity: 150, waitlistCapacity: 50 });
  const lines = ['name,email,course', ...Array.from({ length: 400 }, (_, i) => `File ${i},file${i}@example.org,${course}`)];
  // Some of the file's students also register over HTTP: one registration each, whoever wins.
  const racing = importAndWait(lines.join('\n'));
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    stack.server.client.register(i % 4 === 0 ? { name: `File ${i}`, email: `FILE${i}@example.org`, course } : student(course, i, 'live'))));
  const result = await racing;
  assert.equal(result.status, 'done');
  assert.ok(answers.every((a) => [200, 201, 409].includes(a.status)));
  const rows = await stored(course);
  assert.equal(rows.filter((r) => r.status === 'enrolled').length, 150);
  assert.equal(rows.filter((r) => r.status === 'waitlisted').length, 50);
  const http201 = answers.filter((a) => a.status === 201).length;
  assert.equal(http201 + result.created, rows.length, 'every stored registration was created once, by HTTP or by the file');
  assert.deepEqual(await waitlistPositions(stack.db.sql, course), Array.from({ length: 50 }, (_, i) => i + 1));
  await assertInvariants(stack.db.sql);
});

test('GET /imports lists imports newest first', async () => {
  const list = (await stack.server.client.admin('GET', '/imports?limit=3')).body;
  assert.equal(list.length, 3);
  const times = list.map((i: { createdAt: string }) => Date.parse(i.createdAt));
  assert.deepEqual(times, [...times].sort((a, b) => b - a));
});
