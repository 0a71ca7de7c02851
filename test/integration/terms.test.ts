// Terms over real HTTP against a real PostgreSQL: the API and its bad input, the per-student limit
// decided one request at a time, then raced (hundreds of requests for the courses of one term,
// on two group commits as two workers would, with cancels and promotions meanwhile), and
// imports obeying it. Every race is checked in the rows afterwards, with every invariant.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connectDatabase, type Sql } from '../../src/db/database.ts';
import { newCourse, newTerm, student } from '../support/factories.ts';
import { assertProblem, startTestServer, TEST_ADMIN_TOKEN, type Client, type TestServer } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { untilARegistrationWaitsForALock } from '../support/lock-waits.ts';
import { countBy } from '../support/rush.ts';
import { useStack } from '../support/stack.ts';

// A second server on a pool of its own: its own group commit, as a second worker process has.
let secondPool: Sql;
let second: TestServer;
const stack = useStack({ uploadMaxBytes: 1024 * 1024, runners: { importThreads: 2, importChunkBytes: 1024 } }, async (started) => {
  secondPool = connectDatabase(started.db.url, { max: 10, applicationName: 'registrar-test-second' });
  second = await startTestServer(secondPool);
  // Before the database is dropped: a pool whose connections the drop ends may never end.
  started.onStop('close the second server', async () => {
    await second.close();
    await secondPool.end({ timeout: 5 });
  });
});

const client = () => stack.server.client;
const workers = (): Client[] => [stack.server.client, second.client];

/** Active registrations per student in the term's courses, counted from the rows. */
async function activeByStudent(term: string): Promise<Map<string, number>> {
  const rows = await stack.db.sql<{ email_key: string; n: number }[]>`
    SELECT r.email_key, count(*)::int AS n FROM registrations r JOIN courses c ON c.id = r.course_id
    WHERE c.term_id = ${term} AND r.status <> 'cancelled' GROUP BY r.email_key`;
  return new Map(rows.map((r) => [r.email_key, r.n]));
}

async function termCourses(term: string, count: number, options: { capacity?: number; waitlistCapacity?: number } = {}): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, () => newCourse(client(), { capacity: options.capacity ?? 100, waitlistCapacity: options.waitlistCapacity ?? 0, term })));
}

describe('terms: the API and bad input', () => {
  test('POST /terms 201, GET /terms and /terms/{id} show the limit and the courses; a course shows its term', async () => {
    const created = await client().admin('POST', '/terms', { id: '2027-spring', title: 'Spring 2027', maxCoursesPerStudent: 5 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual({ ...created.body, createdAt: undefined }, { id: '2027-spring', title: 'Spring 2027', maxCoursesPerStudent: 5, courses: [], createdAt: undefined });
    const course = await newCourse(client(), { term: '2027-spring' });
    assert.equal((await client().request('GET', `/courses/${course}`)).body.term, '2027-spring');
    assert.deepEqual((await client().request('GET', '/terms/2027-spring')).body.courses, [course]);
    assert.ok((await client().request('GET', '/terms')).body.some((t: { id: string }) => t.id === '2027-spring'));
    const unlimited = await client().admin('POST', '/terms', { id: 'open-term', title: 'No limit' });
    assert.equal(unlimited.body.maxCoursesPerStudent, null);
    assert.equal((await newCourse(client()).then((id) => client().request('GET', `/courses/${id}`))).body.term, null);
  });

  test('a limit of 0, a negative one or a fraction: 400; a term twice: 409; POST /terms without the admin token: 401', async () => {
    for (const maxCoursesPerStudent of [0, -1, 2.5, '3']) {
      assertProblem(await client().admin('POST', '/terms', { id: 'bad-limit', title: 'Bad', maxCoursesPerStudent }), 400, 'validation', `limit ${maxCoursesPerStudent}`);
    }
    assertProblem(await client().admin('POST', '/terms', { id: 'Bad Id', title: 'Bad' }), 400, 'validation', 'an id with spaces');
    const term = await newTerm(client(), 2);
    assertProblem(await client().admin('POST', '/terms', { id: term, title: 'Again', maxCoursesPerStudent: 9 }), 409, 'conflict', 'the same id twice');
    assert.equal((await client().request('GET', `/terms/${term}`)).body.maxCoursesPerStudent, 2, 'the first one stands');
    assertProblem(await client().request('POST', '/terms', { body: { id: 'x1', title: 'X' } }), 401, 'unauthorized', 'no token');
    assertProblem(await client().request('GET', '/terms/no-such-term'), 404, 'not-found', 'an unknown term');
    assertProblem(await client().admin('PATCH', '/terms/no-such-term', { maxCoursesPerStudent: 3 }), 404, 'not-found', 'PATCH of an unknown term');
    assertProblem(await client().admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: 0 }), 400, 'validation', 'PATCH to limit 0');
  });

  test('a course of an unknown term: 400 naming it, nothing created; PATCH to an unknown term: 400, the course unchanged', async () => {
    const answer = await client().admin('POST', '/courses', { id: 'orphan-course', title: 'Orphan', capacity: 5, term: 'no-such-term' });
    assertProblem(answer, 400, 'validation', 'a course of an unknown term');
    assert.match(answer.body.detail, /no term "no-such-term"/);
    assertProblem(await client().request('GET', '/courses/orphan-course'), 404, 'not-found', 'the course was not created');
    const course = await newCourse(client());
    assertProblem(await client().admin('PATCH', `/courses/${course}`, { term: 'no-such-term' }), 400, 'validation', 'PATCH to an unknown term');
    assert.equal((await client().request('GET', `/courses/${course}`)).body.term, null);
  });

  test('a course moves between terms only while it has no active registration', async () => {
    const [first, other] = [await newTerm(client(), 3), await newTerm(client(), 3)];
    const course = await newCourse(client(), { term: first });
    assert.equal((await client().admin('PATCH', `/courses/${course}`, { term: other })).body.term, other);
    const created = await client().register(student(course, 1, 'mover'));
    assert.equal(created.status, 201);
    const refused = await client().admin('PATCH', `/courses/${course}`, { term: first });
    assertProblem(refused, 409, 'conflict', 'a term change with an active registration');
    assertProblem(await client().admin('PATCH', `/courses/${course}`, { term: null }), 409, 'conflict', 'leaving the term with an active registration');
    await client().request('DELETE', `/registrations/${created.body.id}`, { token: created.body.manageToken });
    assert.equal((await client().admin('PATCH', `/courses/${course}`, { term: null })).body.term, null, 'once cancelled, it may leave');
    await assertInvariants(stack.db.sql);
  });
});

describe('the limit, one request at a time', () => {
  test('limit 2: the third course 409 limit-reached naming the term and the limit, nothing stored; a cancel frees the place', async () => {
    const term = await newTerm(client(), 2);
    const [a, b, c] = await termCourses(term, 3);
    const ann = (course: string) => ({ name: 'Ann', email: 'Ann@Example.org', course });
    const first = await client().register(ann(a!));
    assert.equal((await client().register(ann(b!))).status, 201);
    const refused = await client().register({ ...ann(c!), email: ' ann@example.ORG ' });
    assertProblem(refused, 409, 'limit-reached', 'the third course of a term with limit 2');
    assert.match(refused.body.detail, new RegExp(`Term "${term}" allows 2 active registrations`));
    assert.equal((await stack.db.sql`SELECT 1 FROM registrations WHERE course_id = ${c!}`).length, 0, 'nothing stored');
    assert.equal((await client().register(ann(a!))).status, 200, 'a course she holds already: 200, not the limit');
    await client().request('DELETE', `/registrations/${first.body.id}`, { token: first.body.manageToken });
    assert.equal((await client().register(ann(c!))).status, 201, 'the cancel freed a place in the limit');
    assert.deepEqual([...(await activeByStudent(term))], [['ann@example.org', 2]]);
    await assertInvariants(stack.db.sql);
  });

  test('a full course answers course-full, not the limit; a course of no term or another term does not count', async () => {
    const term = await newTerm(client(), 1);
    const [a, full] = await termCourses(term, 2, { capacity: 1 });
    assert.equal((await client().register(student(full!, 0, 'filler'))).status, 201);
    assert.equal((await client().register(student(a!, 1, 'bea'))).status, 201);
    assertProblem(await client().register(student(full!, 1, 'bea')), 409, 'course-full', 'a full course at the limit');
    const elsewhere = await newCourse(client());
    const otherTerm = await newCourse(client(), { term: await newTerm(client(), 1) });
    assert.equal((await client().register(student(elsewhere, 1, 'bea'))).status, 201);
    assert.equal((await client().register(student(otherTerm, 1, 'bea'))).status, 201);
    await assertInvariants(stack.db.sql);
  });

  test('a promotion from the waitlist does not count twice: waitlisted counts, promoted still one', async () => {
    const term = await newTerm(client(), 2);
    const [small] = await termCourses(term, 1, { capacity: 1, waitlistCapacity: 2 });
    const [other, third] = await termCourses(term, 2);
    const holder = await client().register(student(small!, 0, 'holder'));
    const waiting = await client().register(student(small!, 1, 'cid'));
    assert.equal(waiting.body.status, 'waitlisted');
    assert.equal((await client().register(student(other!, 1, 'cid'))).status, 201);
    assertProblem(await client().register(student(third!, 1, 'cid')), 409, 'limit-reached', 'a waitlist place counts');
    await client().request('DELETE', `/registrations/${holder.body.id}`, { token: holder.body.manageToken });
    assert.equal((await client().request('GET', `/registrations/${waiting.body.id}`, { token: waiting.body.manageToken })).body.status, 'enrolled');
    assertProblem(await client().register(student(third!, 1, 'cid')), 409, 'limit-reached', 'promoted: still two');
    assert.equal((await activeByStudent(term)).get('cid1@example.org'), 2);
    await assertInvariants(stack.db.sql);
  });

  test('PATCH lowering the limit cancels nobody; new registrations are refused until the student is under it', async () => {
    const term = await newTerm(client(), 3);
    const courses = await termCourses(term, 4);
    const held = await Promise.all(courses.slice(0, 3).map((course) => client().register(student(course, 1, 'dee'))));
    assert.deepEqual(held.map((a) => a.status), [201, 201, 201]);
    assert.equal((await client().admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: 1 })).body.maxCoursesPerStudent, 1);
    assert.equal((await activeByStudent(term)).get('dee1@example.org'), 3, 'nobody cancelled');
    assertProblem(await client().register(student(courses[3]!, 1, 'dee')), 409, 'limit-reached', 'above the lowered limit');
    for (const answer of held.slice(0, 2)) await client().request('DELETE', `/registrations/${answer.body.id}`, { token: answer.body.manageToken });
    assertProblem(await client().register(student(courses[3]!, 1, 'dee')), 409, 'limit-reached', 'at the lowered limit');
    await client().request('DELETE', `/registrations/${held[2]!.body.id}`, { token: held[2]!.body.manageToken });
    assert.equal((await client().register(student(courses[3]!, 1, 'dee'))).status, 201, 'under it again');
    assert.equal((await client().admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: null })).body.maxCoursesPerStudent, null);
    await assertInvariants(stack.db.sql);
  });
});

describe('a limit lowered while a registration decides', () => {
  test('the registration that read the old limit is decided again under the new one: refused, the count within it', async () => {
    const term = await newTerm(client(), 5);
    const [held, asked] = await termCourses(term, 2);
    assert.equal((await client().register(student(held!, 1, 'lowered-'))).status, 201);
    const holder = await stack.db.sql.reserve();
    try {
      // The course lock held: the registration (lock last) reads the limit, decides, and waits
      // for the lock to check its decision.
      await holder`BEGIN`;
      await holder`SELECT 1 FROM courses WHERE id = ${asked!} FOR NO KEY UPDATE`;
      const registered = client().register(student(asked!, 1, 'lowered-'));
      await untilARegistrationWaitsForALock(stack.db.sql);
      const patched = await client().admin('PATCH', `/terms/${term}`, { maxCoursesPerStudent: 1 });
      assert.equal(patched.status, 200, 'the change commits before the registration');
      await holder`COMMIT`;
      assertProblem(await registered, 409, 'limit-reached', 'decided on the limit committed before it');
    } finally {
      await holder`ROLLBACK`.catch(() => undefined);
      holder.release();
    }
    assert.equal((await activeByStudent(term)).get('lowered-1@example.org'), 1);
    await assertInvariants(stack.db.sql);
  });
});

describe('the limit under concurrency', () => {
  test('at limit - 1, two registrations for two courses at the same moment on two workers: exactly one passes, 30 times over', async () => {
    const term = await newTerm(client(), 2);
    const courses = await termCourses(term, 3);
    const students = Array.from({ length: 30 }, (_, i) => i);
    await Promise.all(students.map((i) => client().register(student(courses[0]!, i, 'edge'))));
    const answers = await Promise.all(students.flatMap((i) => [
      stack.server.client.register(student(courses[1]!, i, 'edge')),
      second.client.register(student(courses[2]!, i, 'edge')),
    ]));
    assert.deepEqual(countBy(answers, (a) => a.status), { 201: 30, 409: 30 });
    for (const answer of answers.filter((a) => a.status === 409)) assert.equal(answer.body.type, '/problems/limit-reached');
    for (const [key, n] of await activeByStudent(term)) assert.equal(n, 2, key);
    await assertInvariants(stack.db.sql);
  });

  test('40 students each ask for all 8 courses of a limit-3 term at once, on two workers: each holds exactly 3', async () => {
    const term = await newTerm(client(), 3);
    const courses = await termCourses(term, 8, { capacity: 30, waitlistCapacity: 20 });
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => i).flatMap((i) =>
      courses.map((course, c) => workers()[(i + c) % 2]!.register(student(course, i, 'rush')))));
    const statuses = countBy(answers, (a) => a.status);
    assert.equal(statuses[201], 120, JSON.stringify(statuses));
    assert.equal(answers.length, 320);
    for (const answer of answers.filter((a) => a.status === 409)) assert.equal(answer.body.type, '/problems/limit-reached');
    const held = await activeByStudent(term);
    assert.equal(held.size, 40);
    for (const [key, n] of held) assert.equal(n, 3, key);
    await assertInvariants(stack.db.sql);
  });

  test('cancels racing registrations: a student never above the limit, every cancel frees its place', async () => {
    const term = await newTerm(client(), 2);
    const courses = [...await termCourses(term, 2, { capacity: 30 }), ...await termCourses(term, 4, { capacity: 12, waitlistCapacity: 12 })];
    const held = await Promise.all(Array.from({ length: 30 }, (_, i) => i).flatMap((i) =>
      [courses[0]!, courses[1]!].map((course) => client().register(student(course, i, 'swap')))));
    assert.ok(held.every((a) => a.status === 201));
    // Each student cancels one of the two while asking for four more courses on two workers.
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => i).flatMap((i) => [
      client().request('DELETE', `/registrations/${held[2 * i]!.body.id}`, { token: held[2 * i]!.body.manageToken }),
      ...courses.slice(2).map((course, c) => workers()[(i + c) % 2]!.register(student(course, i, 'swap'))),
    ]));
    assert.ok(answers.every((a) => a.status === 200 || a.status === 201 || (a.status === 409 && ['/problems/limit-reached', '/problems/course-full'].includes(a.body.type))), JSON.stringify(countBy(answers, (a) => `${a.status} ${a.body?.type ?? ''}`)));
    const after = await activeByStudent(term);
    for (const [key, n] of after) assert.ok(n <= 2, `${key} holds ${n}`);
    await assertInvariants(stack.db.sql);
    // Every cancel freed its place: whoever holds one course now gets another.
    const extra = await newCourse(client(), { capacity: 30, term });
    const under = Array.from({ length: 30 }, (_, i) => i).filter((i) => (after.get(`swap${i}@example.org`) ?? 0) < 2);
    const more = await Promise.all(under.map((i) => client().register(student(extra, i, 'swap'))));
    assert.deepEqual(more.map((a) => a.status), under.map(() => 201));
    await assertInvariants(stack.db.sql);
  });
});

describe('imports obey the limit', () => {
  async function importAndWait(csv: string) {
    const accepted = await client().request('POST', '/imports', { raw: csv, token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'text/csv' } });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const state = (await client().admin('GET', `/imports/${accepted.body.id}`)).body;
      if (state.status === 'done' || state.status === 'failed') return state;
      assert.ok(Date.now() < deadline, `import still ${state.status} after 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('rows over the limit are rejected with the problem message, the others imported; racing live registrations', async () => {
    const term = await newTerm(client(), 2);
    const courses = await termCourses(term, 4);
    const rows = Array.from({ length: 60 }, (_, i) => courses.map((course) => `Imp ${i},imp${i}@example.org,${course}`)).flat();
    const [result, live] = await Promise.all([
      importAndWait(['name,email,course', ...rows].join('\n') + '\n'),
      Promise.all(Array.from({ length: 60 }, (_, i) => second.client.register(student(courses[i % 4]!, i, 'imp')))),
    ]);
    assert.equal(result.status, 'done', result.failure);
    const liveCreated = live.filter((a) => a.status === 201).length;
    assert.equal(result.created + liveCreated, 120, `${result.created} imported, ${liveCreated} registered live`);
    assert.equal(result.rows, 240);
    assert.equal(result.created + result.rejected + result.existing, 240);
    assert.ok(result.errors.length > 0);
    for (const error of result.errors) assert.match(error.message, new RegExp(`^"imp\\d+@example\\.org" already holds 2 registrations in term "${term}", its limit$`), JSON.stringify(error));
    for (const [key, n] of await activeByStudent(term)) assert.equal(n, 2, key);
    await assertInvariants(stack.db.sql);
  });
});
