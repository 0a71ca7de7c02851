// Races for seats over real HTTP against a real PostgreSQL: many requests at once, then the
// database is read back and every invariant of SPEC.md checked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { assertInvariants, waitlistPositions } from '../support/invariants.ts';
import { countBy } from '../support/rush.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack();

describe('a course far over capacity', () => {
  test('300 students at once: exactly capacity enrolled, waitlist full, the rest 409 course-full', async () => {
    const course = await newCourse(stack.server.client, { capacity: 25, waitlistCapacity: 10 });
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => stack.server.client.register(student(course, i))));
    const statuses = countBy(answers, (a) => a.status);
    assert.deepEqual(statuses, { 201: 35, 409: 265 });
    const created = answers.filter((a) => a.status === 201).map((a) => a.body);
    assert.equal(created.filter((r) => r.status === 'enrolled').length, 25);
    assert.equal(created.filter((r) => r.status === 'waitlisted').length, 10);
    // Positions handed out are exactly 1..10, each once.
    assert.deepEqual(created.filter((r) => r.status === 'waitlisted').map((r) => r.waitlistPosition).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const answer of answers.filter((a) => a.status === 409)) {
      assert.equal(answer.body.type, '/problems/course-full');
      assert.match(answer.headers.get('content-type') ?? '', /application\/problem\+json/);
    }
    const [stored] = await stack.db.sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
    assert.deepEqual({ ...stored }, { enrolled: 25, waitlisted: 10 });
    const [rows] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows?.n, 35);
    // Every created registration has exactly one event (its email), none for the refused.
    const [events] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registration_events WHERE course_id = ${course}`;
    assert.equal(events?.n, 35);
    await assertInvariants(stack.db.sql);
  });

  test('many courses at once each keep their own count', async () => {
    const courses = await Promise.all(Array.from({ length: 5 }, () => newCourse(stack.server.client, { capacity: 7, waitlistCapacity: 3 })));
    const answers = await Promise.all(courses.flatMap((course) => Array.from({ length: 40 }, (_, i) => stack.server.client.register(student(course, i)))));
    assert.deepEqual(countBy(answers, (a) => a.status), { 201: 50, 409: 150 });
    await assertInvariants(stack.db.sql);
  });
});

describe('the same student many times at once', () => {
  test('mixed case and spaces: one registration, exactly one 201, the rest 200 showing nothing stored; one reminder', async () => {
    const course = await newCourse(stack.server.client, { capacity: 5 });
    const spellings = ['ada@example.org', 'ADA@example.org', '  Ada@Example.Org ', 'ada@EXAMPLE.ORG\t', ' aDa@example.org'];
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      stack.server.client.register({ name: 'Ada Lovelace', email: spellings[i % spellings.length]!, course })));
    assert.deepEqual(countBy(answers, (a) => a.status), { 201: 1, 200: 199 });
    const created = answers.find((a) => a.status === 201)!.body;
    assert.equal(typeof created.manageToken, 'string');
    for (const answer of answers.filter((a) => a.status === 200)) {
      // Neither the token nor anything else stored: the caller may not be that student.
      assert.deepEqual(answer.body, { course, email: answer.body.email, alreadyRegistered: true });
      assert.equal(answer.body.email.toLowerCase(), 'ada@example.org', 'the address as sent, trimmed');
    }
    const [rows] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows?.n, 1);
    const events = await stack.db.sql<{ kind: string }[]>`SELECT kind FROM registration_events WHERE course_id = ${course} ORDER BY id`;
    assert.deepEqual(events.map((e) => e.kind), ['enrolled', 'reminder'], 'one registration email, one reminder for all the duplicates');
    await assertInvariants(stack.db.sql);
  });

  test('after cancelling, the same email may register again', async () => {
    const course = await newCourse(stack.server.client, { capacity: 5 });
    const first = await stack.server.client.register(student(course, 1));
    assert.equal(first.status, 201);
    const cancelled = await stack.server.client.request('DELETE', `/registrations/${first.body.id}`, { token: first.body.manageToken });
    assert.equal(cancelled.status, 200);
    const again = await stack.server.client.register(student(course, 1));
    assert.equal(again.status, 201);
    assert.notEqual(again.body.id, first.body.id);
  });
});

describe('cancels and registrations racing', () => {
  test('waitlist positions stay 1..n without gaps and seats go to the waitlist in order', async () => {
    const course = await newCourse(stack.server.client, { capacity: 20, waitlistCapacity: 100 });
    // Fill the seats and a waitlist, one at a time so the arrival order is known.
    const enrolled: { id: string; manageToken: string }[] = [];
    const waitlisted: { id: string; manageToken: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const answer = await stack.server.client.register(student(course, i, 'first'));
      assert.equal(answer.status, 201);
      (answer.body.status === 'enrolled' ? enrolled : waitlisted).push(answer.body);
    }
    assert.equal(enrolled.length, 20);
    assert.equal(waitlisted.length, 40);

    // At once: 10 seat holders cancel, 10 waitlisted cancel, 30 newcomers join the waitlist.
    const cancelsEnrolled = enrolled.slice(0, 10);
    const cancelsWaitlisted = waitlisted.filter((_, i) => i % 4 === 1).slice(0, 10);
    const answers = await Promise.all([
      ...cancelsEnrolled.map((r) => stack.server.client.request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })),
      ...cancelsWaitlisted.map((r) => stack.server.client.request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })),
      ...Array.from({ length: 30 }, (_, i) => stack.server.client.register(student(course, i, 'late'))),
    ]);
    for (const answer of answers) assert.ok(answer.status === 200 || answer.status === 201, JSON.stringify(answer.body));

    await assertInvariants(stack.db.sql);
    const course_ = (await stack.server.client.request('GET', `/courses/${course}`)).body;
    assert.equal(course_.enrolled, 20, 'every freed seat was refilled from the waitlist');
    assert.deepEqual(await waitlistPositions(stack.db.sql, course), Array.from({ length: course_.waitlisted }, (_, i) => i + 1));

    // First come, first served: everyone promoted arrived before everyone still waiting, and no
    // newcomer got a seat while earlier students waited. (A waitlisted student whose cancel lost
    // the race to a promotion was promoted first, then cancelled: that is fine.)
    const [order] = await stack.db.sql<{ last_promoted: string; first_waiting: string; late_enrolled: number }[]>`
      SELECT
        (SELECT max(r.seq) FROM registrations r JOIN registration_events e ON e.registration_id = r.id
          WHERE r.course_id = ${course} AND e.kind = 'promoted')::text AS last_promoted,
        (SELECT min(seq) FROM registrations WHERE course_id = ${course} AND status = 'waitlisted')::text AS first_waiting,
        (SELECT count(*) FROM registrations WHERE course_id = ${course} AND email LIKE 'late%' AND status = 'enrolled')::int AS late_enrolled`;
    assert.ok(BigInt(order!.last_promoted) < BigInt(order!.first_waiting), 'promoted out of order');
    assert.equal(order!.late_enrolled, 0);

    // Positions reported by the API agree with arrival order.
    const list = (await stack.server.client.admin('GET', `/courses/${course}/registrations?status=waitlisted&limit=1000`)).body;
    assert.deepEqual(list.items.map((r: { waitlistPosition: number }) => r.waitlistPosition), Array.from({ length: list.items.length }, (_, i) => i + 1));
    const one = list.items[3];
    const direct = await stack.server.client.admin('GET', `/registrations/${one.id}`);
    assert.equal(direct.body.waitlistPosition, 4);
  });

  test('the same registration cancelled many times at once: one cancel event, always 200', async () => {
    const course = await newCourse(stack.server.client, { capacity: 1, waitlistCapacity: 5 });
    const holder = (await stack.server.client.register(student(course, 0))).body;
    const waiting = (await stack.server.client.register(student(course, 1))).body;
    const answers = await Promise.all(Array.from({ length: 50 }, () =>
      stack.server.client.request('DELETE', `/registrations/${holder.id}`, { token: holder.manageToken })));
    assert.ok(answers.every((a) => a.status === 200 && a.body.status === 'cancelled'));
    const events = await stack.db.sql`SELECT kind, registration_id FROM registration_events WHERE course_id = ${course} ORDER BY id`;
    assert.deepEqual(events.map((e) => [e.kind, e.registration_id]), [
      ['enrolled', holder.id], ['waitlisted', waiting.id], ['cancelled', holder.id], ['promoted', waiting.id],
    ]);
    await assertInvariants(stack.db.sql);
  });

  test('cancels, promotions and capacity raises racing reminders of the same students: never a 500', async () => {
    // A duplicate registration's reminder holds the registration's row lock while its event's
    // foreign-key check takes FOR KEY SHARE on the course; a cancel or a PATCH holds the course
    // lock and wants that registration (cancelled or promoted). Round after round, at once.
    const course = await newCourse(stack.server.client, { capacity: 10, waitlistCapacity: 500 });
    const active = new Map<string, { id: string; manageToken: string; n: number }>();
    let next = 0;
    let capacity = 10;
    for (let round = 0; round < 6; round++) {
      const joined = await Promise.all(Array.from({ length: 25 }, () => {
        const n = next++;
        return stack.server.client.register(student(course, n, 'r')).then((answer) => ({ answer, n }));
      }));
      for (const { answer, n } of joined) {
        assert.equal(answer.status, 201, JSON.stringify(answer.body));
        active.set(answer.body.id, { id: answer.body.id, manageToken: answer.body.manageToken, n });
      }
      await stack.db.sql`UPDATE registrations SET reminded_at = NULL WHERE course_id = ${course}`;
      const enrolled = await stack.db.sql<{ id: string }[]>`
        SELECT id FROM registrations WHERE course_id = ${course} AND status = 'enrolled' ORDER BY seq LIMIT 6`;
      const firstWaiting = await stack.db.sql<{ id: string }[]>`
        SELECT id FROM registrations WHERE course_id = ${course} AND status = 'waitlisted' ORDER BY seq LIMIT 2`;
      const cancelled = [...enrolled, ...firstWaiting.slice(1)].map((r) => active.get(r.id)!);
      capacity += 1;
      const staying = [...active.values()].filter((r) => !cancelled.includes(r));
      const answers = await Promise.all([
        ...cancelled.map((r) => stack.server.client.request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })),
        stack.server.client.admin('PATCH', `/courses/${course}`, { capacity }),
        ...staying.flatMap((r) => [0, 1].map(() => stack.server.client.register(student(course, r.n, 'r')))),
      ]);
      for (const answer of answers) assert.ok(answer.status === 200, `round ${round}: ${answer.status} ${JSON.stringify(answer.body)}`);
      for (const r of cancelled) active.delete(r.id);
      await assertInvariants(stack.db.sql);
    }
    const reminders = await stack.db.sql`SELECT 1 FROM registration_events WHERE course_id = ${course} AND kind = 'reminder'`;
    assert.ok(reminders.length > 0, 'the duplicates were reminded');
  });

  test('raising capacity while students register promotes the waitlist first, in order', async () => {
    const course = await newCourse(stack.server.client, { capacity: 2, waitlistCapacity: 20 });
    const first = [];
    for (let i = 0; i < 12; i++) first.push((await stack.server.client.register(student(course, i))).body);
    const [raise] = await Promise.all([
      stack.server.client.admin('PATCH', `/courses/${course}`, { capacity: 8 }),
      ...Array.from({ length: 20 }, (_, i) => stack.server.client.register(student(course, i, 'new'))),
    ]);
    assert.equal(raise!.status, 200);
    await assertInvariants(stack.db.sql);
    // The six promoted by the raise are waitlist positions 1..6 at the time: first[2..7].
    const promoted = await stack.db.sql<{ registration_id: string }[]>`
      SELECT registration_id FROM registration_events WHERE course_id = ${course} AND kind = 'promoted'`;
    assert.deepEqual(promoted.map((p) => p.registration_id).sort(), first.slice(2, 8).map((r) => r.id).sort());
  });
});

describe('Idempotency-Key', () => {
  test('the same key sent many times at once: one registration; the others replay the 201 or get 409 while it runs', async () => {
    const course = await newCourse(stack.server.client, { capacity: 3 });
    const headers = { 'idempotency-key': `key-${course}` };
    const answers = await Promise.all(Array.from({ length: 50 }, () => stack.server.client.register(student(course, 7), headers)));
    const created = answers.filter((a) => a.status === 201);
    const inProgress = answers.filter((a) => a.status === 409);
    assert.equal(created.length + inProgress.length, 50, JSON.stringify(countBy(answers, (a) => a.status)));
    assert.ok(created.length >= 1);
    for (const answer of inProgress) assert.equal(answer.body.type, '/problems/conflict');
    assert.equal(new Set(created.map((a) => a.body.id)).size, 1);
    assert.equal(new Set(created.map((a) => a.body.manageToken)).size, 1);
    // A retry after the first has finished replays the original 201, token included.
    const replay = await stack.server.client.register(student(course, 7), headers);
    assert.equal(replay.status, 201);
    assert.equal(replay.body.id, created[0]!.body.id);
    assert.equal(replay.body.manageToken, created[0]!.body.manageToken);
    // The replayed token is the real one: it manages the registration.
    const own = await stack.server.client.request('GET', `/registrations/${replay.body.id}`, { token: replay.body.manageToken });
    assert.equal(own.status, 200);
    const [rows] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows?.n, 1);
  });

  test('a key reused with another body is refused with 422 and changes nothing', async () => {
    const course = await newCourse(stack.server.client, { capacity: 3 });
    const headers = { 'idempotency-key': `key-${course}` };
    assert.equal((await stack.server.client.register(student(course, 1), headers)).status, 201);
    const reused = await stack.server.client.register(student(course, 2), headers);
    assert.equal(reused.status, 422);
    const [rows] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows?.n, 1);
  });

  test('an error answer is not stored: the same key succeeds once a seat frees', async () => {
    const course = await newCourse(stack.server.client, { capacity: 1 });
    const holder = (await stack.server.client.register(student(course, 1))).body;
    const headers = { 'idempotency-key': `key-${course}` };
    assert.equal((await stack.server.client.register(student(course, 2), headers)).status, 409);
    await stack.server.client.request('DELETE', `/registrations/${holder.id}`, { token: holder.manageToken });
    const retry = await stack.server.client.register(student(course, 2), headers);
    assert.equal(retry.status, 201);
  });
});
