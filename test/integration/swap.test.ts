// Swaps (POST /registrations/{id}/swap) over real HTTP against a real PostgreSQL: one at a time,
// their refusals (nothing changed) and bad input, then hundreds of swaps on two workers racing
// each other, cancels and new registrations for the last seats, checked in the rows afterwards:
// a swapped student holds the new course and not the old, a refused one the old and not the new.
// A transaction run again for a waiting swap's old course held elsewhere is counted on /metrics.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { processMetrics } from '../../src/observability/metrics.ts';
import { newCourse, newTerm, student } from '../support/factories.ts';
import { type Answer, assertProblem, type Client } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { untilAStatementWaitsForALock } from '../support/lock-waits.ts';
import { parsePrometheusText, sum } from '../support/prometheus-text.ts';
import { startSecondWorker, type SecondWorker } from '../support/second-worker.ts';
import { useStack } from '../support/stack.ts';

let secondWorker: SecondWorker;
// The first server counts its metrics, and answers /metrics with them (this process's registry).
const stack = useStack({ server: { metrics: processMetrics() } }, async (started) => {
  secondWorker = await startSecondWorker(started);
});

const client = () => stack.server.client;

/** registrar_swap_lock_retries_total of `operation`, as GET /metrics shows it. */
async function swapLockRetries(operation: string): Promise<number> {
  const answer = await client().request('GET', '/metrics');
  assert.equal(answer.status, 200);
  const samples = parsePrometheusText(answer.body).filter((s) => s.name === 'registrar_swap_lock_retries_total');
  assert.deepEqual(samples.map((s) => s.labels.operation).sort(), ['cancel', 'course-change', 'swap'], 'a series per operation from the start');
  return sum(samples, 'registrar_swap_lock_retries_total', { operation });
}

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
    const offers = `swap-offers-${process.pid}`;
    assert.equal((await client().admin('POST', '/courses', { id: offers, title: 'Offers', capacity: 1, waitlistCapacity: 3, promotion: 'offer' })).status, 201);
    await registered(offers, 0, 'filler');
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
      [{ course: noWaitlist, wait: true }, 409, 'no-waitlist', 'waiting on a course with no waitlist'],
      [{ course: offers, wait: true }, 409, 'conflict', 'waiting on a course that offers its seats'],
      [{ course: from, wait: true }, 400, 'validation', 'waiting on the same course'],
      [{ course: also, wait: true }, 409, 'already-registered', 'waiting on a course the student holds'],
      [{ course: full, wait: 'yes' }, 400, 'validation', 'wait not a boolean'],
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

describe('a swap that waits ("wait": true)', () => {
  test('waits on the waitlist keeping the old place; a freed seat completes it in one transaction, the old course\'s seat going on', async () => {
    const a = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const b = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const ann = await registered(a, 1, 'wait-ann');
    const next = await registered(a, 1, 'wait-next');
    const bea = await registered(b, 1, 'wait-bea');
    const waiting = await swap(client(), ann, { course: b, wait: true });
    assert.equal(waiting.status, 202, JSON.stringify(waiting.body));
    assert.deepEqual([waiting.body.registration.status, waiting.body.registration.waitlistPosition, waiting.body.replaces.id], ['waitlisted', 1, ann.id]);
    assert.deepEqual([...await heldBy(ann.email)].sort(), [[a, 'enrolled'], [b, 'waitlisted']].sort(), 'both held while waiting');
    assertProblem(await swap(client(), ann, { course: b, wait: true }), 409, 'already-registered', 'the same waiting swap again');
    const c = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    await registered(c, 1, 'wait-cfill');
    assertProblem(await swap(client(), ann, { course: c, wait: true }), 409, 'conflict', 'a second waiting swap of the same registration');
    assertProblem(await client().admin('PATCH', `/courses/${b}`, { promotion: 'offer' }), 409, 'conflict', 'offers while a swap waits');

    // bea's cancel frees b's seat: the swap completes, and ann's seat in a goes to the next.
    assert.equal((await client().request('DELETE', `/registrations/${bea.id}`, { token: bea.manageToken })).status, 200);
    assert.deepEqual([...await heldBy(ann.email)], [[b, 'enrolled']]);
    assert.deepEqual([...await heldBy(next.email)], [[a, 'enrolled']]);
    const newId = waiting.body.registration.id as string;
    assert.deepEqual((await historyOf(newId)).map((e) => [e.kind, e.actor, e.reason]), [
      ['waitlisted', 'student', `waitlisted to swap from ${a} to ${b}; position 1`],
      ['promoted', 'system', `promoted: swapped from ${a} to ${b}`],
    ]);
    assert.deepEqual((await historyOf(ann.id)).map((e) => [e.kind, e.actor, e.reason]), [
      ['enrolled', 'student', 'enrolled: a seat was free'],
      ['cancelled', 'system', `swapped from ${a} to ${b}`],
    ]);
    assert.equal((await historyOf(next.id)).at(-1)!.reason, 'promoted: seat freed by a swap');
    // The new registration's manage token manages it.
    const shown = await client().request('GET', `/registrations/${newId}`, { token: waiting.body.registration.manageToken });
    assert.equal(shown.body.status, 'enrolled');
    await assertInvariants(stack.db.sql);
  });

  test('with a free seat it swaps at once (200); a waitlist full is course-full; the old one cancelled meanwhile leaves an ordinary place', async () => {
    const a = await newCourse(client(), { capacity: 2, waitlistCapacity: 1 });
    const open = await newCourse(client(), { capacity: 2, waitlistCapacity: 2 });
    const tight = await newCourse(client(), { capacity: 1, waitlistCapacity: 1 });
    const cy = await registered(a, 1, 'wait-cy');
    const dan = await registered(a, 1, 'wait-dan');
    const at = await swap(client(), cy, { course: open, wait: true });
    assert.equal(at.status, 200, JSON.stringify(at.body));
    assert.equal(at.body.registration.status, 'enrolled');
    await registered(tight, 1, 'filler-t');
    await registered(tight, 2, 'filler-t');
    assertProblem(await swap(client(), dan, { course: tight, wait: true }), 409, 'course-full', 'no seat and no waitlist place');
    const eve = await registered(a, 1, 'wait-eve');
    const seat = await registered(open, 1, 'filler-o');
    const waits = await swap(client(), eve, { course: open, wait: true });
    assert.equal(waits.status, 202, JSON.stringify(waits.body));
    assert.equal((await client().request('DELETE', `/registrations/${eve.id}`, { token: eve.manageToken })).status, 200);
    assert.equal((await client().request('DELETE', `/registrations/${seat.id}`, { token: seat.manageToken })).status, 200);
    assert.deepEqual([...await heldBy(eve.email)], [[open, 'enrolled']], 'promoted as any waitlisted place');
    assert.equal((await historyOf(waits.body.registration.id)).at(-1)!.reason, 'promoted: seat freed by a cancel');
    await assertInvariants(stack.db.sql);
  });

  test('a waiting swap whose old registration is cancelled no longer bars the course from offering its seats', async () => {
    const a = await newCourse(client(), { capacity: 1, waitlistCapacity: 1 });
    const b = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const ann = await registered(a, 1, 'plain-ann');
    await registered(b, 1, 'plain-bea');
    assert.equal((await swap(client(), ann, { course: b, wait: true })).status, 202);
    assertProblem(await client().admin('PATCH', `/courses/${b}`, { promotion: 'offer' }), 409, 'conflict', 'offers while a swap waits');
    assert.equal((await client().request('DELETE', `/registrations/${ann.id}`, { token: ann.manageToken })).status, 200);
    const patched = await client().admin('PATCH', `/courses/${b}`, { promotion: 'offer' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.promotion, 'offer');
    await assertInvariants(stack.db.sql);
  });

  test('a swap at once of a registration waiting to swap withdraws the waiting one; refused, it leaves it waiting', async () => {
    const a = await newCourse(client(), { capacity: 1, waitlistCapacity: 1 });
    const b = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const full = await newCourse(client(), { capacity: 1, waitlistCapacity: 0 });
    const c = await newCourse(client(), { capacity: 1, waitlistCapacity: 0 });
    const ann = await registered(a, 1, 'mind-ann');
    const bea = await registered(b, 1, 'mind-bea');
    await registered(full, 1, 'mind-full');
    const waiting = await swap(client(), ann, { course: b, wait: true });
    assert.equal(waiting.status, 202, JSON.stringify(waiting.body));
    assertProblem(await swap(client(), ann, { course: full }), 409, 'no-seat', 'refused at once');
    assert.deepEqual([...await heldBy(ann.email)].sort(), [[a, 'enrolled'], [b, 'waitlisted']].sort(), 'the waiting swap stands');
    const at = await swap(client(), ann, { course: c });
    assert.equal(at.status, 200, JSON.stringify(at.body));
    assert.deepEqual([...await heldBy(ann.email)], [[c, 'enrolled']], 'the waiting place withdrawn with the swap');
    assert.deepEqual((await historyOf(waiting.body.registration.id)).at(-1), {
      kind: 'cancelled', actor: 'student', reason: `swap from ${a} to ${b} withdrawn: swapped to ${c}`,
    });
    // b's seat freed later goes to nobody of ann's.
    assert.equal((await client().request('DELETE', `/registrations/${bea.id}`, { token: bea.manageToken })).status, 200);
    assert.deepEqual([...await heldBy(ann.email)], [[c, 'enrolled']]);
    await assertInvariants(stack.db.sql);
  });

  test('a promotion completing a swap whose old course another transaction holds runs again with it locked first, counted once in /metrics', async () => {
    const a = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const b = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const ann = await registered(a, 1, 'held-ann');
    const bea = await registered(b, 1, 'held-bea');
    assert.equal((await swap(client(), ann, { course: b, wait: true })).status, 202);
    const [cancelsBefore, swapsBefore] = [await swapLockRetries('cancel'), await swapLockRetries('swap')];
    const holder = await stack.db.sql.reserve();
    try {
      await holder`BEGIN`;
      await holder`SELECT 1 FROM courses WHERE id = ${a} FOR NO KEY UPDATE`;
      // The cancel's promotion meets a's lock held (NOWAIT: RGW01), and runs again locking a
      // first, in order: it waits for the holder instead of failing.
      const cancelled = client().request('DELETE', `/registrations/${bea.id}`, { token: bea.manageToken });
      await untilAStatementWaitsForALock(stack.db.sql, 'registrar_cancel');
      await holder`COMMIT`;
      assert.equal((await cancelled).status, 200);
    } finally {
      await holder`ROLLBACK`.catch(() => undefined);
      holder.release();
    }
    assert.deepEqual([...await heldBy(ann.email)], [[b, 'enrolled']]);
    assert.equal(await swapLockRetries('cancel') - cancelsBefore, 1, 'the cancel ran again once');
    assert.equal(await swapLockRetries('swap'), swapsBefore, 'no swap ran again');
    await assertInvariants(stack.db.sql);
  });

  test('a completed swap settles its old course\'s offers past their deadline before offering the seat it frees', async () => {
    const a = await newCourse(client(), { capacity: 2, waitlistCapacity: 3 });
    const b = await newCourse(client(), { capacity: 1, waitlistCapacity: 2 });
    const ann = await registered(a, 1, 'due-ann');
    const leaver = await registered(a, 1, 'due-leaver');
    const wes = await registered(a, 1, 'due-wes');
    const wil = await registered(a, 1, 'due-wil');
    const bea = await registered(b, 1, 'due-bea');
    assert.equal((await client().admin('PATCH', `/courses/${a}`, { promotion: 'offer' })).status, 200);
    assert.equal((await client().request('DELETE', `/registrations/${leaver.id}`, { token: leaver.manageToken })).status, 200);
    // The swap settles a's due offers itself: wes's deadline passes after it.
    assert.equal((await swap(client(), ann, { course: b, wait: true })).status, 202);
    const moved = await stack.db.sql`UPDATE registrations SET offer_until = clock_timestamp() - interval '1 second'
      WHERE id = ${wes.id} AND offer_until IS NOT NULL RETURNING id`;
    assert.equal(moved.length, 1, 'wes holds the offer, now past its deadline');
    // bea's cancel completes ann's swap, freeing ann's seat in a: wes's offer ends first, so
    // both seats go on (wil's offer and nobody's past its deadline).
    assert.equal((await client().request('DELETE', `/registrations/${bea.id}`, { token: bea.manageToken })).status, 200);
    assert.deepEqual([...await heldBy(ann.email)], [[b, 'enrolled']]);
    const due = await stack.db.sql`SELECT id FROM registrations WHERE course_id = ${a} AND offer_until <= clock_timestamp()`;
    assert.deepEqual([...due], [], 'no offer past its deadline holds a seat');
    const [wilRow] = await stack.db.sql<{ offer_until: Date | null }[]>`SELECT offer_until FROM registrations WHERE id = ${wil.id}`;
    assert.notEqual(wilRow!.offer_until, null, 'the freed seat is offered to wil');
    await assertInvariants(stack.db.sql);
  });

  test('hundreds of waiting swaps both ways racing cancels, immediate swaps and capacity raises: nobody holds neither, nobody both after the swap', async () => {
    const a = await newCourse(client(), { capacity: 40, waitlistCapacity: 200 });
    const b = await newCourse(client(), { capacity: 40, waitlistCapacity: 200 });
    const c = await newCourse(client(), { capacity: 30, waitlistCapacity: 0 });
    const inA = await Promise.all(Array.from({ length: 40 }, (_, n) => registered(a, n, 'wa')));
    const inB = await Promise.all(Array.from({ length: 40 }, (_, n) => registered(b, n, 'wb')));
    const workers = [stack.server.client, secondWorker.server.client];
    // Every student of a waits to swap into b and every one of b into a (both full): each
    // completed swap frees a seat on the other side, which completes another (a chain).
    const waits = await Promise.all([
      ...inA.map((held, i) => swap(workers[i % 2]!, held, { course: b, wait: true }).then((answer) => ({ held, from: a, to: b, answer }))),
      ...inB.map((held, i) => swap(workers[(i + 1) % 2]!, held, { course: a, wait: true }).then((answer) => ({ held, from: b, to: a, answer }))),
    ]);
    for (const { answer } of waits) assert.ok([200, 202].includes(answer.status), JSON.stringify(answer.body));
    // Then at once: 20 cancels on each side, 20 immediate swaps into c, newcomers, two raises.
    const racing = await Promise.all([
      ...inA.slice(0, 20).map((held, i) => workers[i % 2]!.request('DELETE', `/registrations/${held.id}`, { token: held.manageToken })),
      ...inB.slice(0, 20).map((held, i) => workers[i % 2]!.request('DELETE', `/registrations/${held.id}`, { token: held.manageToken })),
      ...[...inA.slice(20, 30), ...inB.slice(20, 30)].map((held, i) => swap(workers[i % 2]!, held, { course: c })),
      ...Array.from({ length: 40 }, (_, n) => workers[n % 2]!.register(student(n % 2 ? a : b, n, 'wn'))),
      client().admin('PATCH', `/courses/${a}`, { capacity: 45 }),
      client().admin('PATCH', `/courses/${b}`, { capacity: 45 }),
    ]);
    for (const answer of racing) assert.ok(answer.status < 300 || answer.status === 409, `${answer.status} ${JSON.stringify(answer.body)}`);
    const cancelled = new Set([...inA.slice(0, 20), ...inB.slice(0, 20)].map((h) => h.id));
    let completed = 0;
    for (const { held, from, to, answer } of waits) {
      const holds = await heldBy(held.email);
      if (cancelled.has(held.id)) continue;
      assert.ok(holds.size >= 1, `${held.email} holds neither ${from} nor ${to}`);
      const [row] = await stack.db.sql<{ status: string }[]>`SELECT status::text FROM registrations WHERE id = ${answer.body.registration.id}`;
      if (row!.status === 'enrolled' && holds.get(to) === 'enrolled' && !holds.has('c')) {
        completed += 1;
        assert.equal(holds.has(from), false, `${held.email}: the swap completed, the old place is gone`);
      }
    }
    // Every waiting swap whose old registration is active and whose new one was promoted is done.
    const both = await stack.db.sql`
      SELECT n.id FROM registrations n JOIN registrations o ON o.id = n.swap_from
      WHERE n.status = 'enrolled' AND o.status <> 'cancelled'`;
    assert.equal(both.length, 0, 'nobody holds both after the swap completed');
    assert.ok(completed > 0, 'some swaps completed');
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
