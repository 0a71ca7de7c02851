// Several courses in one POST /register, all or nothing, over real HTTP against a real
// PostgreSQL: the answers one request at a time and their bad input, idempotent retries, then
// hundreds of requests racing for the last seats of overlapping courses on two workers (each as
// its own group commit), with single-course requests and the term limit among them. Every race
// is checked in the rows afterwards: a 201 holds every course of its request, a refusal none.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newCourse, newTerm, student } from '../support/factories.ts';
import { type Answer, assertProblem, type Client } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy } from '../support/rush.ts';
import { startSecondWorker, type SecondWorker } from '../support/second-worker.ts';
import { useStack } from '../support/stack.ts';

let secondWorker: SecondWorker;
const stack = useStack({}, async (started) => {
  secondWorker = await startSecondWorker(started);
});

const client = () => stack.server.client;
const workers = (): Client[] => [stack.server.client, secondWorker.server.client];

type Asked = { name: string; email: string; courses: string[]; waitlist?: boolean };

function asking(courses: string[], n: number, prefix: string, extra: Partial<Asked> = {}): Asked {
  const { name, email } = student('', n, prefix);
  return { name, email, courses, ...extra };
}

function registerCourses(worker: Client, body: object, headers?: Record<string, string>): Promise<Answer> {
  return worker.request('POST', '/register', { body, ...(headers ? { headers } : {}) });
}

/** The active registrations of an email, by course. */
async function heldBy(email: string): Promise<Map<string, string>> {
  const rows = await stack.db.sql<{ course_id: string; status: string }[]>`
    SELECT course_id, status::text FROM registrations WHERE email_key = ${email.toLowerCase()} AND status <> 'cancelled'`;
  return new Map(rows.map((r) => [r.course_id, r.status]));
}

async function rowsOf(courses: string[]): Promise<number> {
  const [row] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ANY (${courses})`;
  return row!.n;
}

describe('several courses, one request at a time', () => {
  test('201 with a registration per course in the request\'s order, each with its own token, email and history entry', async () => {
    const [a, b, c] = [await newCourse(client(), { capacity: 1, waitlistCapacity: 1 }), await newCourse(client()), await newCourse(client())];
    assert.equal((await client().register(student(a, 0, 'first'))).status, 201);
    const answer = await registerCourses(client(), asking([c, a, b], 1, 'ann'));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const made = answer.body.registrations as { id: string; course: string; status: string; waitlistPosition: number | null; manageToken: string }[];
    assert.deepEqual(made.map((r) => [r.course, r.status, r.waitlistPosition]), [[c, 'enrolled', null], [a, 'waitlisted', 1], [b, 'enrolled', null]]);
    assert.equal(new Set(made.map((r) => r.manageToken)).size, 3);
    for (const r of made) {
      const history = await client().request('GET', `/registrations/${r.id}/history`, { token: r.manageToken });
      assert.equal(history.status, 200, JSON.stringify(history.body));
      assert.deepEqual(history.body.items.map((e: { kind: string; actor: string }) => [e.kind, e.actor]), [[r.status, 'student']]);
    }
    const [emails] = await stack.db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM registration_events e JOIN registrations r ON r.id = e.registration_id
      WHERE r.email_key = 'ann1@example.org' AND e.kind IN ('enrolled', 'waitlisted')`;
    assert.equal(emails!.n, 3, 'one event (its email) per registration');
    await assertInvariants(stack.db.sql);
  });

  test('a course that refuses refuses the request: 409 naming it and why, nothing of the others stored', async () => {
    const free = await newCourse(client());
    const full = await newCourse(client(), { capacity: 1 });
    const closed = await newCourse(client(), { closesAt: new Date(Date.now() - 60_000).toISOString() });
    const waitOnly = await newCourse(client(), { capacity: 1, waitlistCapacity: 5 });
    assert.equal((await client().register(student(full, 0, 'filler'))).status, 201);
    assert.equal((await client().register(student(waitOnly, 0, 'filler'))).status, 201);
    const cases: [string[], Partial<Asked>, number, string, string][] = [
      [[free, full], {}, 409, 'course-full', full],
      [[free, closed], {}, 409, 'registration-closed', closed],
      [[free, waitOnly], { waitlist: false }, 409, 'no-seat', waitOnly],
      [[free, 'no-such-course'], {}, 404, 'not-found', 'no-such-course'],
    ];
    for (const [courses, extra, status, slug, refusing] of cases) {
      const answer = await registerCourses(client(), asking(courses, 1, 'bob', extra));
      assertProblem(answer, status, slug, `${slug} among the courses`);
      assert.equal(answer.body.course, refusing, 'the problem names the course');
      assert.match(answer.body.detail, new RegExp(refusing));
    }
    assert.equal((await heldBy('bob1@example.org')).size, 0, 'nothing stored');
    // The full course is known full now: refused again from memory, still naming it.
    const again = await registerCourses(secondWorker.server.client, asking([free, full], 2, 'bob'));
    assertProblem(again, 409, 'course-full', 'a course known full');
    assert.equal(again.body.course, full);
    // With a waitlist place asked for, the waitlist-only course takes her.
    assert.equal((await registerCourses(client(), asking([free, waitOnly], 1, 'bob'))).status, 201);
    assert.deepEqual(Object.fromEntries(await heldBy('bob1@example.org')), { [free]: 'enrolled', [waitOnly]: 'waitlisted' });
    await assertInvariants(stack.db.sql);
  });

  test('the term limit counts the request\'s courses together: at limit - 1, two courses 409 naming the second, neither stored', async () => {
    const term = await newTerm(client(), 2);
    const [held, x, y] = await Promise.all([0, 1, 2].map(() => newCourse(client(), { term })));
    assert.equal((await client().register(student(held!, 1, 'gil'))).status, 201);
    const refused = await registerCourses(client(), asking([x!, y!], 1, 'gil'));
    assertProblem(refused, 409, 'limit-reached', 'two courses at limit - 1');
    assert.equal(refused.body.course, y);
    assert.match(refused.body.detail, new RegExp(`Term "${term}" allows 2`));
    assert.deepEqual([...(await heldBy('gil1@example.org')).keys()], [held]);
    assert.equal((await registerCourses(client(), asking([x!], 1, 'gil'))).status, 201, 'one course still fits');
    await assertInvariants(stack.db.sql);
  });

  test('one course with "waitlist": false: the single-course answer, seats only', async () => {
    const course = await newCourse(client(), { capacity: 1, waitlistCapacity: 3 });
    const seat = await client().request('POST', '/register', { body: { ...student(course, 1, 'solo'), waitlist: false } });
    assert.equal(seat.status, 201, JSON.stringify(seat.body));
    assert.equal(seat.body.status, 'enrolled');
    assert.equal(typeof seat.body.manageToken, 'string');
    const refused = await client().request('POST', '/register', { body: { ...student(course, 2, 'solo'), waitlist: false } });
    assertProblem(refused, 409, 'no-seat', 'no seat left, seats only');
    assert.equal(await rowsOf([course]), 1);
    const again = await client().request('POST', '/register', { body: { ...student(course, 1, 'solo'), waitlist: false } });
    assert.deepEqual([again.status, again.body], [200, { course, email: 'solo1@example.org', alreadyRegistered: true }]);
  });

  test('registered already: in every course 200 (a retry of a request that succeeded), in some 409 naming one, nothing added', async () => {
    const [a, b, c] = [await newCourse(client()), await newCourse(client()), await newCourse(client())];
    assert.equal((await registerCourses(client(), asking([a, b], 1, 'cy'))).status, 201);
    const retry = await registerCourses(secondWorker.server.client, asking([a, b], 1, 'cy'));
    assert.deepEqual([retry.status, retry.body], [200, { courses: [a, b], email: 'cy1@example.org', alreadyRegistered: true }]);
    const partly = await registerCourses(client(), asking([c, b], 1, 'cy'));
    assertProblem(partly, 409, 'already-registered', 'one course held already');
    assert.equal(partly.body.course, b);
    assert.deepEqual([...(await heldBy('cy1@example.org')).keys()].sort(), [a, b].sort(), 'c not added');
    await assertInvariants(stack.db.sql);
  });

  test('a course with a queue: 403 not-admitted naming it, nothing stored', async () => {
    const queued = await newCourse(client(), { queue: { order: 'arrival' } });
    const free = await newCourse(client());
    const answer = await registerCourses(client(), asking([free, queued], 1, 'dan'));
    assertProblem(answer, 403, 'not-admitted', 'a queued course among the courses');
    assert.equal(answer.body.course, queued);
    assert.equal(await rowsOf([free, queued]), 0);
  });

  test('bad input: both or neither of course and courses, an empty list, a duplicate, 11 courses, an admission: 400, nothing stored', async () => {
    const courses = await Promise.all(Array.from({ length: 11 }, () => newCourse(client())));
    const [a, b] = courses as [string, string];
    const base = { name: 'Eve', email: 'eve@example.org' };
    const bodies: [object, string][] = [
      [{ ...base, course: a, courses: [b] }, 'both'],
      [base, 'neither'],
      [{ ...base, courses: [] }, 'an empty list'],
      [{ ...base, courses: [a, b, a] }, 'a duplicate'],
      [{ ...base, courses }, '11 courses'],
      [{ ...base, courses: [a, 'Bad Id'] }, 'a malformed id'],
      [{ ...base, courses: [a, b], admission: 'x' }, 'an admission with courses'],
      [{ ...base, courses: [a], waitlist: 'no' }, 'waitlist not a boolean'],
    ];
    for (const [body, what] of bodies) assertProblem(await registerCourses(client(), body), 400, 'validation', what);
    assert.equal(await rowsOf(courses), 0);
    assert.equal((await registerCourses(client(), { ...base, courses: courses.slice(0, 10) })).status, 201, 'ten courses pass');
  });

  test('Idempotency-Key: a retry gets the same registrations and tokens; another list or a single request with the key: 422', async () => {
    const [a, b, c] = [await newCourse(client()), await newCourse(client()), await newCourse(client())];
    const key = { 'idempotency-key': 'multi-key-1' };
    const first = await registerCourses(client(), asking([a, b], 1, 'fay'), key);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const replay = await registerCourses(secondWorker.server.client, asking([a, b], 1, 'fay'), key);
    assert.deepEqual([replay.status, replay.body], [201, first.body]);
    assertProblem(await registerCourses(client(), asking([a, c], 1, 'fay'), key), 422, 'validation', 'the key with another list');
    assertProblem(await client().register(student(a, 1, 'fay'), key), 422, 'validation', 'the key on a single-course request');
    assert.equal(await rowsOf([a, b, c]), 2);
    // A refusal is no stored answer: after a seat frees, the same key succeeds.
    const small = await newCourse(client(), { capacity: 1 });
    const holder = await client().register(student(small, 0, 'holder'));
    const refusedKey = { 'idempotency-key': 'multi-key-2' };
    assertProblem(await registerCourses(client(), asking([c, small], 2, 'fay'), refusedKey), 409, 'course-full', 'full');
    await client().request('DELETE', `/registrations/${holder.body.id}`, { token: holder.body.manageToken });
    assert.equal((await registerCourses(client(), asking([c, small], 2, 'fay'), refusedKey)).status, 201);
    // Two at once with one key: one creates, the other is told it is in progress or replays it.
    const d = await newCourse(client());
    const racing = await Promise.all(workers().map((w) => registerCourses(w, asking([d, c], 3, 'fay'), { 'idempotency-key': 'multi-key-3' })));
    assert.ok(racing.some((r) => r.status === 201));
    for (const r of racing) assert.ok(r.status === 201 || (r.status === 409 && r.body.type === '/problems/conflict'), JSON.stringify(r.body));
    assert.equal((await heldBy('fay3@example.org')).size, 2);
    await assertInvariants(stack.db.sql);
  });
});

describe('several courses under concurrency', () => {
  test('400 requests (3 courses each, or one) race for the last seats of 6 overlapping courses on two workers: nobody holds part of a request', async () => {
    const courses = await Promise.all(Array.from({ length: 6 }, (_, i) => newCourse(client(), { capacity: 25 + 5 * i, waitlistCapacity: i % 2 === 0 ? 0 : 10 })));
    // Request i asks for courses i, i+1, i+3 (mod 6), or one course; every 4th asks seats only.
    const requests = Array.from({ length: 400 }, (_, i) => {
      const picked = i % 5 === 4 ? [courses[i % 6]!] : [courses[i % 6]!, courses[(i + 1) % 6]!, courses[(i + 3) % 6]!];
      return asking(picked, i, 'race', i % 4 === 0 ? { waitlist: false } : {});
    });
    const answers = await Promise.all(requests.map((body, i) => registerCourses(workers()[i % 2]!, body)));
    const statuses = countBy(answers, (a) => a.status);
    assert.equal((statuses[201] ?? 0) + (statuses[409] ?? 0), 400, JSON.stringify(statuses));
    assert.ok((statuses[201] ?? 0) > 20 && (statuses[409] ?? 0) > 20, JSON.stringify(statuses));
    for (const [i, answer] of answers.entries()) {
      const held = await heldBy(requests[i]!.email);
      if (answer.status === 201) {
        assert.deepEqual([...held.keys()].sort(), [...requests[i]!.courses].sort(), `request ${i}: every course`);
        if (requests[i]!.waitlist === false) assert.ok([...held.values()].every((s) => s === 'enrolled'), `request ${i}: seats only`);
      } else {
        assert.equal(held.size, 0, `request ${i} (${answer.body.type}): none of its courses`);
        assert.ok(requests[i]!.courses.includes(answer.body.course), `request ${i}: names one of its courses`);
      }
    }
    // A course refused someone only when it was full as asked: no seat left, or no place at all.
    const stored = await stack.db.sql<{ id: string; enrolled: number; capacity: number }[]>`SELECT id, enrolled, capacity FROM courses WHERE id = ANY (${courses})`;
    for (const answer of answers.filter((a) => a.status === 409)) {
      const course = stored.find((c) => c.id === answer.body.course)!;
      assert.equal(course.enrolled, course.capacity, `${course.id} refused with seats left`);
    }
    await assertInvariants(stack.db.sql);
  });

  test('the term limit counts a request\'s courses together, racing single requests of the same students on two workers', async (t) => {
    const term = await newTerm(client(), 3);
    const courses = await Promise.all(Array.from({ length: 6 }, () => newCourse(client(), { capacity: 200, term })));
    const students = Array.from({ length: 40 }, (_, i) => i);
    // Each student holds course 5, then asks for courses 0-1 at once and for 2, 3 and 4 one by
    // one, all at the same moment: the request fits only if it is decided before any single one.
    await Promise.all(students.map((i) => client().register(student(courses[5]!, i, 'lim'))));
    const answers = await Promise.all(students.map(async (i) => {
      const [multi, ...singles] = await Promise.all([
        registerCourses(workers()[i % 2]!, asking([courses[0]!, courses[1]!], i, 'lim')),
        ...courses.slice(2, 5).map((course, c) => workers()[(i + c + 1) % 2]!.register(student(course, i, 'lim'))),
      ]);
      return { i, multi: multi!, singles };
    }));
    const outcomes: number[] = [];
    for (const { i, multi, singles } of answers) {
      const held = await heldBy(`lim${i}@example.org`);
      const multiHeld = [courses[0]!, courses[1]!].filter((c) => held.has(c)).length;
      outcomes.push(multi.status);
      if (multi.status === 201) assert.equal(multiHeld, 2, `student ${i}: the request's two courses`);
      else {
        assertProblem(multi, 409, 'limit-reached', `student ${i}'s request`);
        assert.equal(multiHeld, 0, `student ${i}: none of the request's courses`);
      }
      const singlesHeld = singles.filter((a) => a.status === 201).length;
      assert.equal(held.size, 1 + multiHeld + singlesHeld, `student ${i}: what the answers said`);
      for (const a of singles.filter((s) => s.status !== 201)) assertProblem(a, 409, 'limit-reached', `student ${i}'s single request`);
      // Nobody is refused below the limit: whichever order they were decided in, three places end taken.
      assert.equal(held.size, 3, `student ${i} holds ${held.size}`);
    }
    t.diagnostic(`requests for two courses: ${JSON.stringify(countBy(outcomes, (s) => s))}`);
    await assertInvariants(stack.db.sql);
  });
});
