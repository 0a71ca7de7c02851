// Swaps (POST /registrations/{id}/swap) over real HTTP against a real PostgreSQL: one at a time,
// their refusals (nothing changed) and bad input, then hundreds of swaps on two workers racing
// each other, cancels and new registrations for the last seats, checked in the rows afterwards:
// a swapped student holds the new course and not the old, a refused one the old and not the new.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { newCourse, newTerm, student } from '../support/factories.ts';
import { type Answer, assertProblem, type Client } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { startSecondWorker, type SecondWorker } from '../support/second-worker.ts';
import { useStack } from '../support/stack.ts';

let secondWorker: SecondWorker;
const stack = useStack({}, async (started) => {
  secondWorker = await startSecondWorker(started.db.url);
});
// Runs before the stack's own after hook (registered first, run last): the second server's
// connections go before the database is dropped.
after(() => secondWorker.close());

const client = () => stack.server.client;

type Held = { id: string; manageToken: string; email: string };

async function registered(course: string, n: number, prefix: string): Promise<Held> {
  const answer = await client().register(student(course, n, prefix));
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { id: answer.body.id, manageToken: answer.body.manageToken, email: `${prefix}${n}@example.org` };
}

function swap(worker: Client, held: Held, body: object, token = held.manageToken): Promise<Answer> {
  return worker.request('POST', `/registrations/${held.id}/swap`, { body, token });
}

/** The active registrations of an email, by course. */
async function heldBy(email: string): Promise<Map<string, string>> {
  const rows = await stack.db.sql<{ course_id: string; status: string }[]>`
    SELECT course_id, status::text FROM registrations WHERE email_key = ${email.toLowerCase()} AND status <> 'cancelled'`;
  return new Map(rows.map((r) => [r.course_id, r.status]));
}

async function historyOf(id: string): Promise<{ kind: string; actor: string; reason: string }[]> {
  return [...await stack.db.sql<{ kind: string; actor: string; reason: string }[]>`
    SELECT kind, actor, reason FROM registration_events WHERE registration_id = ${id} ORDER BY id`];
}

describe('a swap, one at a time', () => {
  test('enrolled in the new course and out of the old in one answer; the freed seat promotes the old course\'s waitlist', async () => {
    const [a, b] = [await newCourse(client(), { capacity: 1, waitlistCapacity: 2 }), await newCourse(client(), { capacity: 2 })];
    const ann = await registered(a, 1, 'ann');
    const bob = await registered(a, 1, 'bob');
    const answer = await swap(client(), ann, { course: b });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.registration.course, b);
    assert.equal(answer.body.registration.status, 'enrolled');
    assert.equal(answer.body.cancelled.id, ann.id);
    assert.equal(answer.body.cancelled.status, 'cancelled');
    assert.deepEqual([...await heldBy(ann.email)], [[b, 'enrolled']]);
    assert.deepEqual([...await heldBy(bob.email)], [[a, 'enrolled']], 'the seat freed in the old course went to its waitlist');
    const reason = `swapped from ${a} to ${b}`;
    assert.deepEqual((await historyOf(ann.id)).at(-1), { kind: 'cancelled', actor: 'student', reason });
    assert.deepEqual(await historyOf(answer.body.registration.id), [{ kind: 'enrolled', actor: 'student', reason }]);
    // The new registration's token manages it; the old token keeps managing the old one only.
    const seen = await client().request('GET', `/registrations/${answer.body.registration.id}`, { token: answer.body.registration.manageToken });
    assert.equal(seen.status, 200, JSON.stringify(seen.body));
    assertProblem(await client().request('GET', `/registrations/${answer.body.registration.id}`, { token: ann.manageToken }), 401, 'unauthorized', 'the old token on the new registration');
    await assertInvariants(stack.db.sql);
  });

  test('a waitlisted registration swaps for a free seat elsewhere; the admin may swap too', async () => {
    const [a, b] = [await newCourse(client(), { capacity: 1, waitlistCapacity: 2 }), await newCourse(client())];
    await registered(a, 1, 'cy');
    const dee = await registered(a, 1, 'dee');
    const answer = await client().request('POST', `/registrations/${dee.id}/swap`, { body: { course: b, wait: false }, token: client().adminToken });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual([...await heldBy(dee.email)], [[b, 'enrolled']]);
    assert.equal((await historyOf(dee.id)).at(-1)?.actor, 'admin');
    await assertInvariants(stack.db.sql);
  });

  test('within a term a swap leaves the count as it was; into another term it counts there', async () => {
    const term = await newTerm(client(), 2);
    const other = await newTerm(client(), 1);
    const [x, y, z] = await Promise.all([0, 1, 2].map(() => newCourse(client(), { term })));
    const [o1, o2] = await Promise.all([0, 1].map(() => newCourse(client(), { term: other })));
    const eve = await registered(x!, 1, 'eve');
    await registered(y!, 1, 'eve');
    // At the limit of 2: a swap is one out, one in.
    const within = await swap(client(), eve, { course: z! });
    assert.equal(within.status, 200, JSON.stringify(within.body));
    assert.deepEqual([...await heldBy(eve.email)].sort(), [[y!, 'enrolled'], [z!, 'enrolled']].sort());
    await registered(o1!, 1, 'eve');
    const moved: Held = { id: within.body.registration.id, manageToken: within.body.registration.manageToken, email: eve.email };
    assertProblem(await swap(client(), moved, { course: o2! }), 409, 'limit-reached', 'into a term at its limit');
    assert.deepEqual([...await heldBy(eve.email)].sort(), [[o1!, 'enrolled'], [y!, 'enrolled'], [z!, 'enrolled']].sort(), 'nothing changed');
    await assertInvariants(stack.db.sql);
  });

  test('refusals change nothing: no seat, closed, registered there, queued; bad input is a clear problem', async () => {
    const from = await newCourse(client(), { capacity: 5, waitlistCapacity: 5 });
    const full = await newCourse(client(), { capacity: 1, waitlistCapacity: 5 });
    const noWaitlist = await newCourse(client(), { capacity: 1, waitlistCapacity: 0 });
    const closed = await newCourse(client(), { closesAt: new Date(Date.now() - 60_000).toISOString() });
    const queued = await newCourse(client(), { queue: { order: 'arrival' } });
    const also = await newCourse(client());
    await registered(full, 0, 'filler');
    await registered(noWaitlist, 0, 'filler');
    const fay = await registered(from, 1, 'fay');
    const gus = await registered(from, 1, 'gus');
    await registered(also, 1, 'fay');
    const cases: [object, number, string, string][] = [
      [{ course: full }, 409, 'no-seat', 'a course with only waitlist places'],
      [{ course: noWaitlist }, 409, 'no-seat', 'a full course'],
      [{ course: closed }, 409, 'registration-closed', 'a closed course'],
      [{ course: also }, 409, 'already-registered', 'a course the student holds'],
      [{ course: queued }, 403, 'not-admitted', 'a course with a queue'],
      [{ course: from }, 400, 'validation', 'the same course'],
      [{ course: 'no-such-course' }, 404, 'not-found', 'an unknown course'],
      [{ course: also, wait: true }, 501, 'not-implemented', 'a swap that waits'],
      [{ course: also, extra: 1 }, 400, 'validation', 'an unknown field'],
      [{}, 400, 'validation', 'no course'],
    ];
    const before = await stack.db.sql`SELECT id, status::text, course_id FROM registrations ORDER BY id`;
    for (const [body, status, slug, what] of cases) assertProblem(await swap(client(), fay, body), status, slug, what);
    assertProblem(await swap(client(), fay, { course: also }, gus.manageToken), 401, 'unauthorized', 'another registration\'s token');
    assertProblem(await client().request('POST', `/registrations/${fay.id}/swap`, { body: { course: also } }), 401, 'unauthorized', 'no token');
    assertProblem(await client().request('POST', '/registrations/00000000-0000-4000-8000-000000000000/swap', { body: { course: also }, token: client().adminToken }), 404, 'not-found', 'an unknown registration');
    assert.deepEqual(await stack.db.sql`SELECT id, status::text, course_id FROM registrations ORDER BY id`, before, 'nothing changed');
    assert.equal((await client().request('DELETE', `/registrations/${gus.id}`, { token: gus.manageToken })).status, 200);
    assertProblem(await swap(client(), gus, { course: also }), 409, 'conflict', 'a cancelled registration');
    await assertInvariants(stack.db.sql);
  });
});

describe('swaps racing cancels and registrations for the last seats', () => {
  test('every swapped student holds the new course and not the old; every refused one the old and not the new', async () => {
    const a = await newCourse(client(), { capacity: 100, waitlistCapacity: 40 });
    const b = await newCourse(client(), { capacity: 100, waitlistCapacity: 40 });
    const inA = await Promise.all(Array.from({ length: 100 }, (_, n) => registered(a, n, 'ra')));
    const waitingA = await Promise.all(Array.from({ length: 20 }, (_, n) => registered(a, n, 'rw')));
    const inB = await Promise.all(Array.from({ length: 80 }, (_, n) => registered(b, n, 'rb')));
    const workers = [stack.server.client, secondWorker.server.client];
    // 100 swaps a -> b for b's 20 free seats and those its own swappers free; 40 swaps b -> a;
    // 20 of a's swappers cancel at the same moment; 30 newcomers register for b.
    const racing = await Promise.all([
      ...inA.map((held, i) => swap(workers[i % 2]!, held, { course: b }).then((answer) => ({ held, from: a, to: b, answer }))),
      ...inB.slice(0, 40).map((held, i) => swap(workers[(i + 1) % 2]!, held, { course: a }).then((answer) => ({ held, from: b, to: a, answer }))),
      ...inA.slice(80).map((held, i) => workers[i % 2]!.request('DELETE', `/registrations/${held.id}`, { token: held.manageToken }).then((answer) => ({ cancel: held, answer }))),
      ...Array.from({ length: 30 }, (_, n) => workers[n % 2]!.register(student(b, n, 'rn')).then((answer) => ({ newcomer: n, answer }))),
    ]);
    let swapped = 0;
    for (const result of racing) {
      if ('cancel' in result) {
        assert.equal(result.answer.status, 200, JSON.stringify(result.answer.body));
        continue;
      }
      if ('newcomer' in result) {
        assert.ok([201, 409].includes(result.answer.status), JSON.stringify(result.answer.body));
        continue;
      }
      const { held, from, to, answer } = result;
      const holds = await heldBy(held.email);
      const cancelledByItself = inA.slice(80).includes(held);
      if (answer.status === 200) {
        swapped += 1;
        assert.deepEqual([...holds], [[to, 'enrolled']], `${held.email} swapped: holds the new course only`);
      } else {
        assert.equal(answer.status, 409, JSON.stringify(answer.body));
        assert.ok(['no-seat', 'conflict'].includes(answer.body.type.replace('/problems/', '')), JSON.stringify(answer.body));
        assert.equal(holds.has(to), false, `${held.email} refused: not in the new course`);
        if (!cancelledByItself) assert.equal(holds.has(from), true, `${held.email} refused: keeps the old course`);
      }
    }
    assert.ok(swapped >= 20, `at least b's free seats were swapped into (${swapped})`);
    for (const held of waitingA) assert.equal((await heldBy(held.email)).size, 1);
    await assertInvariants(stack.db.sql);
  });
});
