// Waitlist offers over real HTTP against a real PostgreSQL and a real SMTP server: a freed seat
// held for position 1, accepted, declined or expired exactly once (the deadline decided under the
// course lock, at the next look when no worker ticked), racing accepts, declines and cancels
// around the deadline, and every offer's email and webhook once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { settleDueOffers } from '../../src/domain/offers.service.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, newTerm, student } from '../support/factories.ts';
import { type Answer, assertProblem, type Client } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { untilAStatementWaitsForALock } from '../support/lock-waits.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ smtp: true, receiver: true, runners: {} });
const client = () => stack.server.client;

const OFFER_EVENTS = ['registration.offered', 'registration.offer-accepted', 'registration.offer-declined', 'registration.offer-expired'];

let courses = 0;
async function offerCourse(c: Client, capacity: number, waitlistCapacity: number, offerHours = 1): Promise<string> {
  const id = `offers-${process.pid}-${(courses += 1)}`;
  const answer = await c.admin('POST', '/courses', { id, title: `Offers ${id}`, capacity, waitlistCapacity, promotion: 'offer', offerHours });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  assert.equal(answer.body.promotion, 'offer');
  assert.equal(answer.body.offerHours, offerHours);
  return id;
}

type Created = { id: string; manageToken: string; status: string; email: string };

async function registerAll(course: string, count: number, prefix: string): Promise<Created[]> {
  const created: Created[] = [];
  // In order: the waitlist's order is the order of these registrations.
  for (let i = 0; i < count; i += 1) {
    const answer = await client().register(student(course, i, `${prefix}-`));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    created.push(answer.body);
  }
  return created;
}

const get = (r: Created, token = r.manageToken) => client().request('GET', `/registrations/${r.id}`, { token });
const answerOffer = (r: Created, what: 'accept' | 'decline', token = r.manageToken) => client().request('POST', `/registrations/${r.id}/offer/${what}`, { token });

async function kinds(registrationId: string): Promise<string[]> {
  const rows = await stack.db.sql<{ kind: string }[]>`SELECT kind FROM registration_events WHERE registration_id = ${registrationId} ORDER BY id`;
  return rows.map((r) => r.kind);
}

async function entriesOf(course: string, kind: string) {
  const rows = await stack.db.sql<{ registration_id: string; actor: string; reason: string }[]>`
    SELECT registration_id, actor, reason FROM registration_events WHERE course_id = ${course} AND kind = ${kind} ORDER BY id`;
  return rows.map((row) => ({ ...row }));
}

/** The deadline of the registration's open offer moved to `offsetMs` from the database's clock (a
 *  deadline reached without waiting for it). */
async function moveDeadline(registrationId: string, offsetMs: number): Promise<void> {
  const rows = await stack.db.sql`
    UPDATE registrations SET offer_until = clock_timestamp() + make_interval(secs => ${offsetMs / 1000})
    WHERE id = ${registrationId} AND offer_until IS NOT NULL RETURNING id`;
  assert.equal(rows.length, 1, 'the registration holds an open offer');
}

/** Every email the course's events should have sent, received once each by the SMTP server. */
async function assertEveryEmailOnce(course: string): Promise<void> {
  const events = await stack.db.sql<{ id: string; kind: string; registration_id: string }[]>`
    SELECT id::text, kind, registration_id FROM registration_events WHERE course_id = ${course}`;
  const expected = new Set(events.map((e) => `<registrar.${e.registration_id}.${e.kind}.${e.id}@127.0.0.1>`));
  const mine = () => stack.smtp.messages.filter((m) => expected.has(m.messageId));
  await eventually(async () => new Set(mine().map((m) => m.messageId)).size, (n) => n === expected.size);
  assert.equal(mine().length, expected.size, 'each email once');
}

describe('a freed seat offered to waitlist position 1', () => {
  test('a cancel offers the seat once; the offer holds it; accept enrols, a second accept answers the same', async () => {
    const webhook = await client().admin('POST', '/webhooks', { url: stack.receiver.url, events: OFFER_EVENTS });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
    stack.receiver.setSecret(webhook.body.secret);
    const course = await offerCourse(client(), 1, 5, 2);
    const [ann, bob, cy] = await registerAll(course, 3, 'hold');
    assert.deepEqual([ann!.status, bob!.status, cy!.status], ['enrolled', 'waitlisted', 'waitlisted']);
    assert.equal((await client().request('DELETE', `/registrations/${ann!.id}`, { token: ann!.manageToken })).status, 200);

    const offered = await get(bob!);
    assert.equal(offered.status, 200);
    assert.equal(offered.body.status, 'waitlisted');
    assert.equal(offered.body.waitlistPosition, 1, 'the one holding the offer keeps their place');
    const until = Date.parse(offered.body.offer.until);
    assert.ok(until > Date.now() + 3_600_000 && until <= Date.now() + 2 * 3_600_000, offered.body.offer.until);
    assert.equal((await get(cy!)).body.waitlistPosition, 2, 'the others count the offered place ahead of them');
    assert.equal((await get(cy!)).body.offer, null);
    const shown = await client().request('GET', `/courses/${course}`);
    assert.deepEqual([shown.body.enrolled, shown.body.offered, shown.body.seatsLeft], [0, 1, 0], 'the held seat is nobody else\'s');
    const late = await client().register(student(course, 9, 'late-'));
    assert.equal(late.body.status, 'waitlisted', 'a newcomer does not take the held seat');
    assert.deepEqual(await entriesOf(course, 'offered'), [{ registration_id: bob!.id, actor: 'system', reason: 'offered: seat freed by a cancel; held for 2 h' }]);
    const [held] = await stack.db.sql<{ hours: number }[]>`SELECT extract(epoch FROM offer_until - offered_at)::float8 / 3600 AS hours FROM registrations WHERE id = ${bob!.id}`;
    assert.equal(held!.hours, 2, 'held for exactly offerHours');

    assertProblem(await answerOffer(bob!, 'accept', cy!.manageToken), 401, 'unauthorized', 'an accept with another registration\'s token');
    assertProblem(await answerOffer(cy!, 'accept'), 409, 'no-offer', 'an accept without an offer');
    const accepted = await answerOffer(bob!, 'accept');
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.deepEqual([accepted.body.status, accepted.body.offer], ['enrolled', null]);
    const again = await answerOffer(bob!, 'accept');
    assert.equal(again.status, 200, 'an offer accepted twice answers the same enrolled registration');
    assert.equal(again.body.status, 'enrolled');
    assertProblem(await answerOffer(bob!, 'decline'), 409, 'no-offer', 'a decline after the accept');
    assert.deepEqual(await kinds(bob!.id), ['waitlisted', 'offered', 'accepted']);
    assert.equal((await entriesOf(course, 'accepted'))[0]!.actor, 'student');

    // The offer email: its deadline and the accept and decline links, each email once.
    const offerEmail = await eventually(async () => stack.smtp.messages.find((m) => m.to.includes(bob!.email) && m.messageId.includes('.offered.')), (m) => m !== undefined);
    assert.match(offerEmail!.subject, /is offered to you until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    assert.match(offerEmail!.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '='), new RegExp(`/manage/${bob!.id}#token=[0-9a-f]+&(amp;)?action=accept`));
    await assertEveryEmailOnce(course);
    const hooks = await eventually(async () => stack.receiver.received.filter((r) => r.body?.data?.course?.id === course), (list) => list.length >= 2);
    assert.deepEqual(hooks.map((h) => h.type).sort(), ['registration.offer-accepted', 'registration.offered']);
    assert.ok(hooks.every((h) => h.verified));
    await assertInvariants(stack.db.sql);
  });

  test('a decline passes the seat to the next; answers after it are clear and change nothing', async () => {
    const course = await offerCourse(client(), 1, 5);
    const [ann, bob, cy] = await registerAll(course, 3, 'decline');
    await client().admin('DELETE', `/registrations/${ann!.id}`);
    const declined = await answerOffer(bob!, 'decline');
    assert.equal(declined.status, 200, JSON.stringify(declined.body));
    assert.equal(declined.body.status, 'cancelled');
    assert.equal((await answerOffer(bob!, 'decline')).body.status, 'cancelled', 'declined twice: the same answer');
    assertProblem(await answerOffer(bob!, 'accept'), 409, 'no-offer', 'an accept after the decline');
    const next = await get(cy!);
    assert.deepEqual([next.body.waitlistPosition, typeof next.body.offer?.until], [1, 'string'], 'cy holds the seat now');
    assert.deepEqual(await kinds(bob!.id), ['waitlisted', 'offered', 'declined']);
    assert.deepEqual((await entriesOf(course, 'offered')).map((e) => e.reason), ['offered: seat freed by a cancel; held for 1 h', 'offered: the offer before it was declined; held for 1 h']);
    // A cancel by the one holding the offer passes it on too.
    assert.equal((await client().request('DELETE', `/registrations/${cy!.id}`, { token: cy!.manageToken })).status, 200);
    const course2 = await client().request('GET', `/courses/${course}`);
    assert.deepEqual([course2.body.enrolled, course2.body.offered, course2.body.waitlisted], [0, 0, 0]);
    await assertEveryEmailOnce(course);
    await assertInvariants(stack.db.sql);
  });

  test('a declined or expired offer frees the student\'s place in the term\'s limit', async () => {
    const term = await newTerm(client(), 1);
    const course = `offers-term-${process.pid}`;
    assert.equal((await client().admin('POST', '/courses', { id: course, title: 'Term offers', capacity: 1, waitlistCapacity: 3, promotion: 'offer', term })).status, 201);
    const other = `offers-term-other-${process.pid}`;
    assert.equal((await client().admin('POST', '/courses', { id: other, title: 'Other', capacity: 5, term })).status, 201);
    const [ann, bob, cy] = await registerAll(course, 3, 'term');
    assertProblem(await client().register(student(other, 1, 'term-')), 409, 'limit-reached', 'bob holds his one place of the term');
    await client().admin('DELETE', `/registrations/${ann!.id}`);
    assert.equal((await answerOffer(bob!, 'decline')).status, 200);
    assert.equal((await client().register(student(other, 1, 'term-'))).status, 201, 'declined: bob may register elsewhere in the term');
    await moveDeadline(cy!.id, -1);
    assert.equal((await get(cy!)).body.status, 'cancelled');
    assert.equal((await client().register(student(other, 2, 'term-'))).status, 201, 'expired: so may cy');
    await assertInvariants(stack.db.sql);
  });

  test('an accept one millisecond late is refused, one before the deadline wins', async () => {
    const course = await offerCourse(client(), 2, 5);
    const [ann, ben, cy, dee] = await registerAll(course, 4, 'edge');
    await client().admin('PATCH', `/courses/${course}`, { capacity: 3 });
    await client().admin('DELETE', `/registrations/${ann!.id}`);
    assert.ok((await get(cy!)).body.offer && (await get(dee!)).body.offer, 'a raise and a cancel: two seats offered');
    await moveDeadline(cy!.id, -1);
    assertProblem(await answerOffer(cy!, 'accept'), 409, 'offer-expired', 'an accept 1 ms after the deadline');
    assertProblem(await answerOffer(cy!, 'accept'), 409, 'offer-expired', 'and again');
    assertProblem(await answerOffer(cy!, 'decline'), 409, 'offer-expired', 'a decline after the deadline');
    await moveDeadline(dee!.id, 5_000);
    assert.equal((await answerOffer(dee!, 'accept')).body.status, 'enrolled', 'an accept before the deadline wins');
    assert.deepEqual(await kinds(cy!.id), ['waitlisted', 'offered', 'expired']);
    const [expired] = await entriesOf(course, 'expired');
    assert.equal(expired!.actor, 'system');
    assert.match(expired!.reason, /^offer expired after [0-9.]+ h$/);
    assert.equal(ben!.status, 'enrolled');
    await assertInvariants(stack.db.sql);
  });
});

describe('expiry with no job worker ticking', () => {
  test('decided at the next look (a read, a cancel, the tick after a restart), once', async () => {
    const course = await offerCourse(client(), 1, 6);
    const [ann, bob, cy, dee, eve] = await registerAll(course, 5, 'look');
    await client().admin('DELETE', `/registrations/${ann!.id}`);

    // A read of the registration holding the expired offer decides it.
    await moveDeadline(bob!.id, -1);
    const read = await get(bob!);
    assert.deepEqual([read.body.status, read.body.offer], ['cancelled', null]);
    assert.ok((await get(cy!)).body.offer, 'the seat passed to cy');
    // A cancel of another registration of the course decides it.
    await moveDeadline(cy!.id, -1);
    assert.equal((await client().request('DELETE', `/registrations/${eve!.id}`, { token: eve!.manageToken })).status, 200);
    assert.equal((await get(cy!)).body.status, 'cancelled');
    // The job worker's tick (settleDueOffers) after it was down: once, and a second tick finds nothing.
    await moveDeadline(dee!.id, -1);
    assert.ok(await settleDueOffers(stack.db.sql) >= 1);
    assert.equal((await stack.db.sql`SELECT 1 FROM registrations WHERE course_id = ${course} AND offer_until <= clock_timestamp()`).length, 0);
    assert.equal((await stack.db.sql`SELECT 1 FROM registrations WHERE course_id = ${course} AND offer_until IS NOT NULL`).length, 0, 'nobody left to offer to');
    for (const r of [bob!, cy!, dee!]) assert.deepEqual(await kinds(r.id), ['waitlisted', 'offered', 'expired'], r.email);
    assertProblem(await answerOffer(dee!, 'accept'), 409, 'offer-expired', 'an accept after the tick');
    const shown = await client().request('GET', `/courses/${course}`);
    assert.deepEqual([shown.body.enrolled, shown.body.offered, shown.body.waitlisted, shown.body.seatsLeft], [0, 0, 0, 1]);
    await assertEveryEmailOnce(course);
    await assertInvariants(stack.db.sql);
  });
});

describe('a registration meeting an expired offer', () => {
  test('settles it first: the course\'s only held seat goes to the newcomer, not course-full (lock last, lock first, several courses)', async () => {
    const ways: [string, (course: string) => Promise<Answer>][] = [
      ['lock last', (course) => client().register(student(course, 1, 'newcomer-'))],
      ['lock first (an Idempotency-Key)', (course) => client().register(student(course, 2, 'newcomer-'), { 'idempotency-key': `settle-${course}` })],
      ['several courses at once', async (course) => {
        const other = await newCourse(client(), { capacity: 5 });
        return client().request('POST', '/register', { body: { name: 'Newcomer', email: 'newcomer3@example.org', courses: [course, other] } });
      }],
    ];
    for (const [way, register] of ways) {
      const course = await offerCourse(client(), 1, 1);
      const [ann, bob] = await registerAll(course, 2, `held-${courses}`);
      await client().admin('DELETE', `/registrations/${ann!.id}`);
      assert.ok((await get(bob!)).body.offer, 'bob holds the only seat');
      await moveDeadline(bob!.id, -1);
      const answer = await register(course);
      assert.equal(answer.status, 201, `${way}: ${JSON.stringify(answer.body)}`);
      const [row] = await stack.db.sql<{ enrolled: number; offered: number; waitlisted: number }[]>`
        SELECT enrolled, offered, waitlisted FROM courses WHERE id = ${course}`;
      assert.deepEqual({ ...row }, { enrolled: 1, offered: 0, waitlisted: 0 }, way);
      assert.deepEqual(await kinds(bob!.id), ['waitlisted', 'offered', 'expired'], way);
    }
    await assertInvariants(stack.db.sql);
  });
});

describe('the lock order of term counts when offers are settled', () => {
  // A batch of another course of the term holds the lower of two students' counts and then asks
  // for the higher (the order every transaction takes them in). amy's cancel or swap, settling
  // the other's due offer, must ask for the lower first too: the other way round, the two
  // deadlock (40P01). The cancel settles a later key's offer (zed), the swap an earlier one's (abe).
  for (const [change, due] of [['cancel', 'zed'], ['swap', 'abe']] as const) {
    test(`a ${change} that settles ${due}'s offer takes the term counts in key order: no deadlock`, async () => {
      const term = await newTerm(client(), null);
      const course = `offers-order-${change}-${process.pid}`;
      assert.equal((await client().admin('POST', '/courses', { id: course, title: 'Order', capacity: 2, waitlistCapacity: 2, promotion: 'offer', term })).status, 201);
      const other = await newCourse(client(), { capacity: 5, term });
      const email = (who: string) => `${who}-order-${change}@example.org`;
      const ann = await client().register({ name: 'Ann', email: email('ann'), course });
      const amy = await client().register({ name: 'Amy', email: email('amy'), course });
      const waiting = await client().register({ name: due, email: email(due), course });
      assert.deepEqual([ann.status, amy.status, waiting.body.status], [201, 201, 'waitlisted']);
      await client().admin('DELETE', `/registrations/${ann.body.id}`);
      await moveDeadline(waiting.body.id, -1);
      const [first, second] = [email('amy'), email(due)].sort();
      const holder = await stack.db.sql.reserve();
      const changer = await stack.db.sql.reserve();
      try {
        await holder`BEGIN`;
        await holder`SELECT 1 FROM term_students WHERE term_id = ${term} AND email_key = ${first!} FOR UPDATE`;
        const changed = change === 'cancel'
          ? changer`SELECT registrar_cancel(${amy.body.id}, 'student') AS result`
          : changer`SELECT registrar_swap(${amy.body.id}, ${other}, 'swap-order-token', 'student') AS result`;
        const settled = changed.then((rows) => rows[0]!.result as { outcome: string }, (error: unknown) => error);
        await untilAStatementWaitsForALock(stack.db.sql, `registrar_${change}`);
        // Out of order, the changer holds this count and waits for the first: a deadlock.
        await holder`SELECT 1 FROM term_students WHERE term_id = ${term} AND email_key = ${second!} FOR UPDATE`;
        await holder`COMMIT`;
        const result = await settled;
        assert.ok(!(result instanceof Error), `the ${change} failed: ${String(result)}`);
        assert.equal((result as { outcome: string }).outcome, change === 'cancel' ? 'cancelled' : 'swapped');
      } finally {
        await holder`ROLLBACK`.catch(() => undefined);
        holder.release();
        changer.release();
      }
      assert.deepEqual(await kinds(waiting.body.id), ['waitlisted', 'offered', 'expired']);
      await assertInvariants(stack.db.sql);
    });
  }
});

describe('accepts, declines and cancels racing the deadline', () => {
  test('each offer ends exactly once, held seats never over capacity', async (t) => {
    const seats = 12;
    // 0.0005 h = 1.8 s: the deadline comes while the requests are in flight.
    const course = await offerCourse(client(), seats, 200, 0.0005);
    const enrolled = await registerAll(course, seats, 'race-e');
    const waiting = await registerAll(course, 60, 'race-w');
    const byId = new Map([...enrolled, ...waiting].map((r) => [r.id, r]));
    const answers = new Map<string, { what: 'accept' | 'decline'; answer: Answer }[]>();
    const record = (r: Created, what: 'accept' | 'decline', answer: Answer) => answers.set(r.id, [...(answers.get(r.id) ?? []), { what, answer }]);

    // Every enrolled student cancels: each freed seat is offered; the offers expire, are
    // accepted or declined around their deadline, and pass on, while the tick runs too.
    await Promise.all(enrolled.map((r) => client().request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })));
    const seen = new Set<string>();
    const started = Date.now();
    const inFlight: Promise<unknown>[] = [];
    let round = 0;
    while (Date.now() - started < 9_000) {
      round += 1;
      const open = await stack.db.sql<{ id: string; until_ms: number }[]>`
        SELECT id, (extract(epoch FROM offer_until - clock_timestamp()) * 1000)::float8 AS until_ms FROM registrations
        WHERE course_id = ${course} AND offer_until IS NOT NULL`;
      for (const offer of open) {
        if (seen.has(offer.id)) continue;
        seen.add(offer.id);
        const r = byId.get(offer.id)!;
        const n = seen.size;
        // A third accept, a third decline, a third let it run out (a few of them answered late);
        // the answers are aimed around the deadline, from 300 ms before to 300 ms after.
        const what: 'accept' | 'decline' | 'none' = n % 3 === 0 ? 'accept' : n % 3 === 1 ? 'decline' : 'none';
        const shots = what === 'none' ? [offer.until_ms + 200] : Array.from({ length: 12 }, (_, i) => offer.until_ms - 300 + i * 50);
        for (const at of shots) {
          inFlight.push(new Promise((resolve) => setTimeout(resolve, Math.max(0, at))).then(async () => {
            const as = what === 'decline' ? 'decline' : 'accept';
            record(r, as, await answerOffer(r, as));
          }));
        }
        if (n % 7 === 0) inFlight.push(new Promise((resolve) => setTimeout(resolve, Math.max(0, offer.until_ms - 100))).then(() => client().request('DELETE', `/registrations/${r.id}`, { token: r.manageToken })));
      }
      if (round % 3 === 0) inFlight.push(settleDueOffers(stack.db.sql));
      // Seats taken and held, counted from the rows at this moment: never more than the capacity.
      const [held] = await stack.db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course} AND (status = 'enrolled' OR offer_until IS NOT NULL)`;
      assert.ok(held!.n <= seats, `${held!.n} seats taken or held of ${seats}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.all(inFlight);
    await settleDueOffers(stack.db.sql);
    assert.ok(seen.size > seats, `offers passed on (${seen.size} made)`);

    for (const id of seen) {
      const list = answers.get(id) ?? [];
      const history = await kinds(id);
      assert.equal(history.filter((k) => k === 'offered').length, 1, `${id}: offered once`);
      // What followed the offer: one end (accepted, declined, expired, or a cancel while it was
      // open); an enrolment may be cancelled after, nothing else.
      const ends = history.slice(history.indexOf('offered') + 1);
      const offerEnds = ends.filter((k) => ['accepted', 'declined', 'expired'].includes(k));
      const stillOpen = (await stack.db.sql`SELECT 1 FROM registrations WHERE id = ${id} AND offer_until IS NOT NULL`).length === 1;
      assert.equal(ends.length === 0, stillOpen, `${id}: an offer with no end is still open: ${history.join(', ')}`);
      assert.ok(offerEnds.length <= 1 && (offerEnds.length === 0 || ends[0] === offerEnds[0]), `${id}: never two ends: ${history.join(', ')}`);
      assert.ok(ends.length <= 1 || (ends[0] === 'accepted' && ends[1] === 'cancelled' && ends.length === 2), `${id}: ${history.join(', ')}`);
      for (const { what, answer } of list) {
        assert.ok([200, 409].includes(answer.status), `${id} ${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
        if (answer.status === 409) assert.ok(['/problems/offer-expired', '/problems/no-offer'].includes(answer.body.type), JSON.stringify(answer.body));
      }
      const won = (what: string) => list.some((a) => a.what === what && a.answer.status === 200);
      if (ends[0] === 'accepted') assert.ok(won('accept') && !list.some((a) => a.answer.body?.type === '/problems/offer-expired'), `${id}: accepted, and no accept was told it expired`);
      if (ends[0] === 'declined') assert.ok(won('decline') && !won('accept'), `${id}: declined, never accepted`);
      if (ends[0] === 'expired') assert.ok(!won('accept') && !won('decline'), `${id}: expired, so no answer won`);
      if (won('accept')) assert.equal(ends[0], 'accepted', `${id}: an accept that won is the end`);
    }
    const tally = await stack.db.sql<{ kind: string; n: number }[]>`
      SELECT kind, count(*)::int AS n FROM registration_events WHERE course_id = ${course} GROUP BY kind ORDER BY kind`;
    t.diagnostic(`${seen.size} offers; events: ${tally.map((r) => `${r.kind} ${r.n}`).join(', ')}`);
    await assertInvariants(stack.db.sql);
    await assertEveryEmailOnce(course);
  });
});

describe('bad input', () => {
  test('promotion and offerHours are checked; a capacity below the held seats is refused', async () => {
    const refused = [
      { promotion: 'sometimes' }, { promotion: 'offer', offerHours: 0 }, { promotion: 'offer', offerHours: -1 },
      { promotion: 'offer', offerHours: 721 }, { promotion: 'offer', offerHours: '48' }, { offerHours: 0.00001 },
    ];
    for (const extra of refused) {
      assertProblem(await client().admin('POST', '/courses', { id: `bad-${process.pid}`, title: 'Bad', capacity: 1, ...extra }), 400, 'validation', JSON.stringify(extra));
    }
    const plain = await client().admin('POST', '/courses', { id: `plain-${process.pid}`, title: 'Plain', capacity: 1 });
    assert.deepEqual([plain.body.promotion, plain.body.offerHours, plain.body.offered], ['automatic', 48, 0], 'automatic and 48 h by default');
    const course = await offerCourse(client(), 2, 3);
    const [ann, , cy] = await registerAll(course, 3, 'bad');
    await client().admin('DELETE', `/registrations/${ann!.id}`);
    assertProblem(await client().admin('PATCH', `/courses/${course}`, { capacity: 1 }), 409, 'conflict', 'a capacity below enrolled + held');
    assertProblem(await client().admin('PATCH', `/courses/${course}`, { offerHours: 0 }), 400, 'validation', 'offerHours 0 in a PATCH');
    assertProblem(await client().request('POST', '/registrations/not-a-uuid/offer/accept', { token: 'x' }), 400, 'validation', 'a malformed id');
    assertProblem(await client().request('POST', '/registrations/00000000-0000-4000-8000-000000000000/offer/accept', { token: cy!.manageToken }), 404, 'not-found', 'an unknown registration');
    assertProblem(await client().request('POST', `/registrations/${cy!.id}/offer/accept`), 401, 'unauthorized', 'no token');
    // Switching to automatic promotes nobody into the held seat; the admin may answer too.
    const automatic = await client().admin('PATCH', `/courses/${course}`, { promotion: 'automatic' });
    assert.deepEqual([automatic.body.enrolled, automatic.body.offered], [1, 1]);
    const byAdmin = await client().admin('POST', `/registrations/${cy!.id}/offer/accept`);
    assert.equal(byAdmin.body.status, 'enrolled');
    await assertInvariants(stack.db.sql);
  });
});
