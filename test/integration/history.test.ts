// The history of registrations over real HTTP against a real PostgreSQL: after a rush with
// cancels and promotions every change has exactly one entry with the right actor and reason
// (read back from the rows), and the two history routes page and authenticate as the others do.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { assertProblem, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ uploadMaxBytes: 1024 * 1024, runners: { importThreads: 1 } });
const client = () => stack.server.client;

type Entry = { id: string; registration: string | null; course: string; kind: string; actor: string; reason: string; waitlistPosition: number | null; at: string };

async function storedEntries(course: string) {
  return stack.db.sql<{ id: string; registration_id: string; kind: string; actor: string; reason: string }[]>`
    SELECT id::text, registration_id, kind, actor, reason FROM registration_events WHERE course_id = ${course} AND kind <> 'reminder' ORDER BY registration_events.id`;
}

/** Every page of GET /courses/{id}/history, `limit` entries at a time. */
async function allPages(course: string, limit: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  let after: string | null = null;
  for (let pages = 0; ; pages += 1) {
    assert.ok(pages < 1000, 'the pages end');
    const page: { status: number; body: { items: Entry[]; next: string | null } } = await client().admin('GET', `/courses/${course}/history?limit=${limit}${after === null ? '' : `&after=${after}`}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.ok(page.body.items.length <= limit);
    entries.push(...page.body.items);
    after = page.body.next;
    if (after === null) return entries;
  }
}

describe('a rush with cancels and promotions', () => {
  test('every change has exactly one entry, with who made it and why, counted against the rows', async () => {
    const course = await newCourse(client(), { capacity: 8, waitlistCapacity: 30 });
    const first = await Promise.all(Array.from({ length: 30 }, (_, i) => client().register(student(course, i, 'h'))));
    assert.ok(first.every((a) => a.status === 201));
    const enrolled = first.filter((a) => a.body.status === 'enrolled');
    const waitlisted = first.filter((a) => a.body.status === 'waitlisted');
    // Cancels (5 by their students, 3 by the admin, some of the waitlist too) racing 20 more registrations.
    const byStudent = [...enrolled.slice(0, 5), waitlisted.at(-1)!];
    const byAdmin = [...enrolled.slice(5, 8), waitlisted.at(-2)!];
    await Promise.all([
      ...byStudent.map((a) => client().request('DELETE', `/registrations/${a.body.id}`, { token: a.body.manageToken })),
      ...byAdmin.map((a) => client().admin('DELETE', `/registrations/${a.body.id}`)),
      ...Array.from({ length: 20 }, (_, i) => client().register(student(course, i, 'late'))),
    ]);
    // A capacity raise promotes too, and a duplicate's reminder is no change.
    assert.equal((await client().admin('PATCH', `/courses/${course}`, { capacity: 12 })).status, 200);
    const kept = first.find((a) => ![...byStudent, ...byAdmin].includes(a))!;
    assert.equal((await client().register({ name: kept.body.name, email: kept.body.email, course })).status, 200);

    const rows = await stack.db.sql<{ id: string; status: string }[]>`SELECT id, status FROM registrations WHERE course_id = ${course}`;
    const entries = await storedEntries(course);
    const kindsOf = (id: string) => entries.filter((e) => e.registration_id === id).map((e) => e.kind);
    // Each registration: created once, promoted if it left the waitlist, cancelled if it was.
    const cancelled = new Set([...byStudent, ...byAdmin].map((a) => a.body.id as string));
    for (const row of rows) {
      const kinds = kindsOf(row.id);
      const created = kinds[0];
      assert.ok(created === 'enrolled' || created === 'waitlisted', `${row.id}: ${kinds.join(', ')}`);
      const expected = [created, ...(created === 'waitlisted' && (row.status === 'enrolled' || kinds.includes('promoted')) ? ['promoted'] : []), ...(row.status === 'cancelled' ? ['cancelled'] : [])];
      assert.deepEqual(kinds, expected, row.id);
      assert.equal(row.status === 'cancelled', cancelled.has(row.id));
    }
    assert.equal(entries.length, rows.length + entries.filter((e) => e.kind === 'promoted').length + cancelled.size, 'one entry per change, none more');
    assert.equal(entries.filter((e) => e.kind === 'promoted').length, 8 + 4, 'each freed seat and each new one promoted once');

    for (const e of entries) {
      if (e.kind === 'promoted') {
        assert.equal(e.actor, 'system');
        assert.match(e.reason, /^promoted: (seat freed by a cancel|capacity raised to 12)$/);
      } else if (e.kind === 'cancelled') {
        const admin = byAdmin.some((a) => a.body.id === e.registration_id);
        assert.equal(e.actor, admin ? 'admin' : 'student', e.registration_id);
        assert.match(e.reason, admin ? /^cancelled by an admin while (enrolled|waitlisted)$/ : /^cancelled by the student while (enrolled|waitlisted)$/);
      } else {
        assert.equal(e.actor, 'student');
        assert.match(e.reason, e.kind === 'enrolled' ? /^enrolled: a seat was free$/ : /^waitlisted: the seats were taken; position \d+$/);
      }
    }
    assert.ok(entries.some((e) => e.reason === 'promoted: capacity raised to 12'));
    await assertInvariants(stack.db.sql);

    // The course's history through the API, 7 a page: every entry once, newest first.
    const all = await allPages(course, 7);
    assert.deepEqual(all.filter((e) => e.kind === 'capacity-changed').map((e) => [e.registration, e.actor, e.reason]), [[null, 'admin', 'capacity 8 → 12']]);
    const paged = all.filter((e) => e.kind !== 'capacity-changed');
    assert.deepEqual(paged.map((e) => e.id), entries.map((e) => e.id).reverse());
    assert.deepEqual(paged.map((e) => [e.registration, e.kind, e.actor, e.reason]), entries.map((e) => [e.registration_id, e.kind, e.actor, e.reason]).reverse());
    assert.ok(paged.every((e) => e.course === course && !Number.isNaN(Date.parse(e.at))));
  });
});

describe('GET /registrations/{id}/history', () => {
  test('with its manage token (or the admin\'s): its changes newest first, "why am I number 2" answered; no reminder', async () => {
    const course = await newCourse(client(), { capacity: 1, waitlistCapacity: 5 });
    const seat = (await client().register(student(course, 1, 'w'))).body;
    await client().register(student(course, 2, 'w'));
    const third = (await client().register(student(course, 3, 'w'))).body;
    assert.equal((await client().register(student(course, 3, 'w'))).status, 200, 'a duplicate: a reminder, no change');
    const waiting = await client().request('GET', `/registrations/${third.id}/history`, { token: third.manageToken });
    assert.equal(waiting.status, 200, JSON.stringify(waiting.body));
    assert.deepEqual(waiting.body.items.map((e: Entry) => [e.kind, e.actor, e.reason, e.waitlistPosition]), [['waitlisted', 'student', 'waitlisted: the seats were taken; position 2', 2]]);
    await client().request('DELETE', `/registrations/${seat.id}`, { token: seat.manageToken });
    await client().admin('PATCH', `/courses/${course}`, { capacity: 2 });
    const promoted = await client().request('GET', `/registrations/${third.id}/history`, { token: third.manageToken });
    assert.deepEqual(promoted.body.items.map((e: Entry) => [e.kind, e.actor, e.reason]), [
      ['promoted', 'system', 'promoted: capacity raised to 2'],
      ['waitlisted', 'student', 'waitlisted: the seats were taken; position 2'],
    ]);
    const asAdmin = await client().admin('GET', `/registrations/${seat.id}/history`);
    assert.deepEqual(asAdmin.body.items.map((e: Entry) => e.kind), ['cancelled', 'enrolled']);
  });

  test('another registration\'s token or none: 401; an unknown registration: 404; a malformed id: 400', async () => {
    const course = await newCourse(client());
    const mine = (await client().register(student(course, 1, 'x'))).body;
    const other = (await client().register(student(course, 2, 'x'))).body;
    assertProblem(await client().request('GET', `/registrations/${mine.id}/history`, { token: other.manageToken }), 401, 'unauthorized', 'another registration\'s token');
    assertProblem(await client().request('GET', `/registrations/${mine.id}/history`), 401, 'unauthorized', 'no token');
    assertProblem(await client().admin('GET', '/registrations/00000000-0000-4000-8000-000000000000/history'), 404, 'not-found', 'an unknown registration');
    assertProblem(await client().admin('GET', '/registrations/not-a-uuid/history'), 400, 'validation', 'a malformed id');
  });
});

describe('GET /courses/{id}/history', () => {
  test('admin only: 401 without the token; 404 for an unknown course; 400 for a bad cursor or limit', async () => {
    const course = await newCourse(client());
    assertProblem(await client().request('GET', `/courses/${course}/history`), 401, 'unauthorized', 'no token');
    assertProblem(await client().admin('GET', '/courses/no-such-course/history'), 404, 'not-found', 'an unknown course');
    assertProblem(await client().admin('GET', `/courses/${course}/history?after=abc`), 400, 'validation', 'a bad cursor');
    assertProblem(await client().admin('GET', `/courses/${course}/history?limit=0`), 400, 'validation', 'limit 0');
    assert.deepEqual((await client().admin('GET', `/courses/${course}/history`)).body, { items: [], next: null });
  });

  test('a capacity change has one entry by the admin, course-level, before the promotions it causes; pages run across both', async () => {
    const course = await newCourse(client(), { capacity: 1, waitlistCapacity: 3 });
    for (let i = 0; i < 4; i += 1) assert.equal((await client().register(student(course, i, 'cap-'))).status, 201);
    assert.equal((await client().admin('PATCH', `/courses/${course}`, { capacity: 3 })).status, 200);
    assert.equal((await client().admin('PATCH', `/courses/${course}`, { title: 'Renamed' })).status, 200, 'no capacity change, no entry');
    assert.equal((await client().admin('PATCH', `/courses/${course}`, { capacity: 4, waitlistCapacity: 1 })).status, 200);
    const entries = (await allPages(course, 2)).toReversed();
    assert.deepEqual(entries.map((e) => [e.kind, e.actor, e.reason]), [
      ['enrolled', 'student', 'enrolled: a seat was free'],
      ['waitlisted', 'student', 'waitlisted: the seats were taken; position 1'],
      ['waitlisted', 'student', 'waitlisted: the seats were taken; position 2'],
      ['waitlisted', 'student', 'waitlisted: the seats were taken; position 3'],
      ['capacity-changed', 'admin', 'capacity 1 → 3'],
      ['promoted', 'system', 'promoted: capacity raised to 3'],
      ['promoted', 'system', 'promoted: capacity raised to 3'],
      ['capacity-changed', 'admin', 'capacity 3 → 4; waitlist capacity 3 → 1'],
      ['promoted', 'system', 'promoted: capacity raised to 4'],
    ]);
    assert.deepEqual(entries.filter((e) => e.kind === 'capacity-changed').map((e) => e.registration), [null, null]);
    assert.ok(entries.every((e) => e.kind === 'capacity-changed' || typeof e.registration === 'string'));
    const stored = await stack.db.sql`SELECT actor, reason FROM course_events WHERE course_id = ${course} ORDER BY id`;
    assert.deepEqual(stored.map((r) => r['reason']), ['capacity 1 → 3', 'capacity 3 → 4; waitlist capacity 3 → 1']);
    assertProblem(await client().admin('PATCH', `/courses/${course}`, { capacity: 1 }), 409, 'conflict', 'a refused change');
    assert.equal((await stack.db.sql`SELECT 1 FROM course_events WHERE course_id = ${course}`).length, 2, 'a refused change has no entry');
    await assertInvariants(stack.db.sql);
  });

  test('an imported registration\'s entry says import', async () => {
    const course = await newCourse(client());
    const accepted = await client().request('POST', '/imports', { raw: `name,email,course\nIda,ida@example.org,${course}\n`, token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'text/csv' } });
    assert.equal(accepted.status, 202);
    const deadline = Date.now() + 60_000;
    while ((await client().admin('GET', `/imports/${accepted.body.id}`)).body.status !== 'done') {
      assert.ok(Date.now() < deadline, 'the import finishes');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const page = await client().admin('GET', `/courses/${course}/history`);
    assert.deepEqual(page.body.items.map((e: Entry) => [e.kind, e.actor, e.reason]), [['enrolled', 'import', 'enrolled: a seat was free']]);
  });
});
