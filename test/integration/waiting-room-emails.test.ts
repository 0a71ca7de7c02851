// The waiting room's emails through the job queue to a real SMTP server (joined, the link sent
// again, admitted, sold-out), each with a token of its own that sees the place and whose
// admission registers, and verifyEmail: only an emailed token verifies, an unverified place is
// never ranked or admitted. Every email exactly once, counted by Message-ID. The queue's webhook
// events, signed and posted once each.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { readQueueFigures } from '../../src/domain/queue-figures.service.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse } from '../support/factories.ts';
import { type Answer, assertProblem } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { pageLink } from '../support/queue-mail.ts';
import { countBy } from '../support/rush.ts';
import type { ReceivedMessage } from '../support/smtp-server.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ poolSize: 30, smtp: true, receiver: true, runners: {} });

const past = (ms: number) => new Date(Date.now() - ms).toISOString();
const future = (ms: number) => new Date(Date.now() + ms).toISOString();

let courses = 0;

/** A queued course that opens in an hour (open(course) opens it). */
function queuedCourse(options: { capacity: number; waitlistCapacity?: number; verifyEmail?: boolean }): Promise<string> {
  courses += 1;
  return newCourse(stack.server.client, { capacity: options.capacity, waitlistCapacity: options.waitlistCapacity ?? 0, title: `Queued ${courses}`, opensAt: future(3_600_000), queue: { order: 'random', verifyEmail: options.verifyEmail ?? false } });
}

async function open(course: string): Promise<void> {
  const answer = await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: past(1_000) });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

function join(course: string, email: string): Promise<Answer> {
  return stack.server.client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${email}`, email } });
}

type Joined = { id: string; email: string; queueToken: string };

async function joinAll(course: string, prefix: string, count: number): Promise<Joined[]> {
  const emails = Array.from({ length: count }, (_, i) => `${prefix}${i}@example.org`);
  const answers = await Promise.all(emails.map((email) => join(course, email)));
  assert.deepEqual(countBy(answers, (a) => a.status), { 201: count });
  return answers.map((a, i) => ({ id: a.body.id, email: emails[i]!, queueToken: a.body.queueToken }));
}

function place(id: string, token: string): Promise<Answer> {
  return stack.server.client.request('GET', `/queue/${id}`, { token });
}

function verify(id: string, token: string): Promise<Answer> {
  return stack.server.client.request('POST', `/queue/${id}/verify`, { token });
}

/** The messages received for this address so far. */
function mailOf(email: string): ReceivedMessage[] {
  return stack.smtp.messages.filter((m) => m.to.includes(email));
}

/** Waits until this address has `count` messages, and answers them. */
async function waitForMail(email: string, count: number): Promise<ReceivedMessage[]> {
  return eventually(async () => mailOf(email), (messages) => messages.length >= count);
}

/** Waits until no email job is left, then checks every event (registration or queue) was emailed exactly once. */
async function assertEveryEventEmailedOnce(): Promise<void> {
  const [events] = await stack.db.sql<{ n: number }[]>`
    SELECT (SELECT count(*) FROM registration_events)::int + (SELECT count(*) FROM queue_events)::int AS n`;
  await eventually(async () => {
    const [jobs] = await stack.db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'send_email'`;
    return { jobs: jobs!.n, received: new Set(stack.smtp.messages.map((m) => m.messageId)).size };
  }, ({ jobs, received }) => jobs === 0 && received >= events!.n, 120_000);
  const ids = stack.smtp.messages.map((m) => m.messageId);
  assert.equal(new Set(ids).size, events!.n, 'one email per event');
  assert.equal(ids.length, events!.n, 'no Message-ID received twice');
}

/** One admission tick of the course, as the job worker's ticker runs it. */
async function tick(course: string) {
  return admitFromQueue(stack.db.sql, course);
}

describe('the joined email and the link sent again', () => {
  test('a join sends one email whose own token sees the place; the answer\'s token still does', async () => {
    const course = await queuedCourse({ capacity: 5 });
    const [ada] = await joinAll(course, 'ada', 1);
    const [message] = await waitForMail(ada!.email, 1);
    assert.match(message!.subject, /^You are in the queue for Queued \d+$/);
    const link = pageLink(message!);
    assert.equal(link.id, ada!.id);
    assert.notEqual(link.token, ada!.queueToken, 'the email carries a token of its own');
    for (const token of [link.token, ada!.queueToken]) {
      const seen = await place(ada!.id, token);
      assert.equal(seen.status, 200);
      assert.equal(seen.body.status, 'waiting');
    }
    const [other] = await joinAll(course, 'other', 1);
    assertProblem(await place(other!.id, link.token), 401, 'unauthorized', 'an emailed token sees its own place only');
    await assertEveryEventEmailedOnce();
  });

  test('the same email again sends the link once; a third join within 10 minutes sends none', async () => {
    const course = await queuedCourse({ capacity: 5 });
    const [bea] = await joinAll(course, 'bea', 1);
    await waitForMail(bea!.email, 1);
    const again = await join(course, bea!.email);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { course, email: bea!.email, alreadyQueued: true });
    const [, resent] = await waitForMail(bea!.email, 2);
    assert.match(resent!.subject, /^Your link to the queue for /);
    const link = pageLink(resent!);
    assert.equal((await place(link.id, link.token)).body.id, bea!.id, 'the re-sent link\'s token sees the place');

    assert.equal((await join(course, bea!.email)).status, 200);
    await assertEveryEventEmailedOnce();
    assert.equal(mailOf(bea!.email).length, 2, 'the third join, within 10 minutes, emailed nothing');
    await stack.db.sql`UPDATE queue_places SET link_sent_at = now() - interval '11 minutes' WHERE id = ${bea!.id}`;
    assert.equal((await join(course, bea!.email)).status, 200);
    await waitForMail(bea!.email, 3);
    await assertEveryEventEmailedOnce();
  });
});

describe('the admission tick\'s emails', () => {
  test('each admitted place gets one email with its deadline; its token\'s admission registers', async () => {
    const course = await queuedCourse({ capacity: 2 });
    const joined = await joinAll(course, 'adm', 4);
    await open(course);
    const outcome = await tick(course);
    assert.equal(outcome.outcome === 'admitting' && outcome.admitted, 2);
    const admitted = await stack.db.sql<{ email: string; admitted_until: Date }[]>`
      SELECT email, admitted_until FROM queue_places WHERE course_id = ${course} AND status = 'admitted'`;
    assert.equal(admitted.length, 2);
    for (const { email, admitted_until: until } of admitted) {
      const messages = await waitForMail(email, 2);
      const message = messages.find((m) => /^Your turn: register for /.test(m.subject));
      assert.ok(message, `an admitted email for ${email}`);
      assert.ok(message.raw.includes(until.toISOString().slice(0, 19).replace('T', ' ')), 'the email states the deadline');
      const link = pageLink(message);
      const seen = await place(link.id, link.token);
      assert.equal(seen.body.status, 'admitted');
      const registered = await stack.server.client.request('POST', '/register', { body: { name: 'A Student', email, course, admission: seen.body.admission } });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      // The join answer's token derives another admission of the same place: it finds the registration.
      const own = joined.find((j) => j.email === email)!;
      const byAnswerToken = (await place(own.id, own.queueToken)).body;
      assert.equal(byAnswerToken.status, 'registered');
    }
    const waiting = joined.filter((j) => !admitted.some((a) => a.email === j.email));
    await assertEveryEventEmailedOnce();
    for (const j of waiting) assert.deepEqual(mailOf(j.email).map((m) => m.subject.replace(/ \d+$/, '')), ['You are in the queue for Queued'], 'a waiting place got its joined email only');
    await assertInvariants(stack.db.sql);
  });

  test('sold out: every waiting place gets exactly one sold-out email, a few hundred in jobs of many entries, none if the tick rolls back', async () => {
    const course = await queuedCourse({ capacity: 1 });
    const joined = await joinAll(course, 'sold', 300);
    await open(course);
    await tick(course);
    const [first] = await stack.db.sql<{ email: string }[]>`SELECT email FROM queue_places WHERE course_id = ${course} AND status = 'admitted'`;
    const firstJoined = joined.find((j) => j.email === first!.email)!;
    const admission = (await place(firstJoined.id, firstJoined.queueToken)).body.admission;
    assert.equal((await stack.server.client.request('POST', '/register', { body: { name: 'First', email: first!.email, course, admission } })).status, 201);

    // The sold-out tick in a transaction that rolls back: its jobs were written with it, in
    // batches, and go with it.
    const rolledBack = new Error('roll back');
    const inTick = await stack.db.sql.begin(async (tx) => {
      await tx`SELECT registrar_admit(${course})`;
      const [jobs] = await tx<{ jobs: number; entries: number }[]>`
        SELECT count(*)::int AS jobs, sum(json_array_length(payload))::int AS entries FROM graphile_worker._private_jobs
        WHERE xmin = pg_current_xact_id()::xid`;
      throw Object.assign(rolledBack, { jobs });
    }).catch((error: unknown) => {
      if (error !== rolledBack) throw error;
      return (error as Error & { jobs: { jobs: number; entries: number } }).jobs;
    });
    assert.deepEqual(inTick, { jobs: 2, entries: 299 }, '299 sold-out emails in two jobs');

    const outcome = await tick(course);
    assert.equal(outcome.outcome === 'sold-out' && outcome.soldOut, 299);
    await assertEveryEventEmailedOnce();
    const soldOut = stack.smtp.messages.filter((m) => / is sold out$/.test(m.subject) && m.to.some((to) => to.startsWith('sold')));
    assert.equal(soldOut.length, 299);
    assert.equal(new Set(soldOut.flatMap((m) => m.to)).size, 299, 'one sold-out email per waiting place');
    assert.ok(!soldOut.some((m) => m.to.includes(first!.email)), 'the registered student is not told the course sold out');
    const link = pageLink(soldOut[0]!);
    assert.equal((await place(link.id, link.token)).body.status, 'sold-out');
    await assertInvariants(stack.db.sql);
  });
});

describe('closesAt', () => {
  test('every place still waiting or admitted and not registered ends closed once, whoever ticks; each told by page and one email', async () => {
    const course = await queuedCourse({ capacity: 2 });
    const joined = await joinAll(course, 'close', 6);
    await open(course);
    await tick(course);
    const views = await Promise.all(joined.map(async (j) => ({ ...j, ...(await place(j.id, j.queueToken)).body })));
    const admitted = views.filter((v) => v.status === 'admitted');
    assert.equal(admitted.length, 2, 'two seats: two admissions');
    const [registering, late] = admitted;
    assert.equal((await stack.server.client.request('POST', '/register', { body: { name: 'In time', email: registering!.email, course, admission: registering!.admission } })).status, 201);

    const closing = await stack.server.client.admin('PATCH', `/courses/${course}`, { closesAt: past(1) });
    assert.equal(closing.status, 200, JSON.stringify(closing.body));
    // Two tickers at once (two job workers, or two instances): the course closes once.
    const outcomes = await Promise.all([tick(course), tick(course)]);
    assert.deepEqual(outcomes.map((o) => (o.outcome === 'closed' ? o.closedPlaces : o.outcome)).sort(), [0, 5]);
    assert.deepEqual((await tick(course)).outcome, 'closed');
    const [open_] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrar_queued_courses_open() AS id WHERE id = ${course}`;
    assert.equal(open_!.n, 0, 'a closed queue leaves the ticker\'s list');

    const after = await Promise.all(joined.map(async (j) => ({ email: j.email, status: (await place(j.id, j.queueToken)).body.status as string })));
    assert.deepEqual(countBy(after, (a) => a.status), { registered: 1, closed: 5 });
    const refused = await stack.server.client.request('POST', '/register', { body: { name: 'Too late', email: late!.email, course, admission: late!.admission } });
    assertProblem(refused, 409, 'registration-closed', 'an admission used after closesAt');
    assertProblem(await join(course, 'close-late@example.org'), 409, 'registration-closed', 'joining after closesAt');

    await assertEveryEventEmailedOnce();
    const closed = stack.smtp.messages.filter((m) => /^Registration for .* has closed$/.test(m.subject));
    assert.deepEqual(new Set(closed.flatMap((m) => m.to)), new Set(after.filter((a) => a.status === 'closed').map((a) => a.email)), 'one closed email per closed place');
    assert.equal(closed.length, 5);
    const link = pageLink(closed[0]!);
    assert.equal((await place(link.id, link.token)).body.status, 'closed');
    const figures = (await readQueueFigures(stack.db.sql)).find((f) => f.course === course);
    assert.deepEqual(figures?.places, { unverified: 0, waiting: 0, admitted: 0, registered: 1, expired: 0, 'sold-out': 0, left: 0, closed: 5 });
    await assertInvariants(stack.db.sql);
  });
});

describe('verifyEmail', () => {
  test('only an emailed token verifies; an unverified place is never ranked or admitted', async () => {
    const course = await queuedCourse({ capacity: 10, verifyEmail: true });
    const [cy, dee, eve] = await joinAll(course, 'ver', 3);
    const unverified = await place(cy!.id, cy!.queueToken);
    assert.equal(unverified.body.status, 'unverified');
    const [confirm] = await waitForMail(cy!.email, 1);
    assert.match(confirm!.subject, /^Confirm your place in the queue for /);
    const link = pageLink(confirm!);

    assertProblem(await verify(cy!.id, cy!.queueToken), 401, 'unauthorized', 'the join answer\'s token does not verify');
    const deeLink = pageLink((await waitForMail(dee!.email, 1))[0]!);
    assertProblem(await verify(cy!.id, deeLink.token), 401, 'unauthorized', 'another place\'s emailed token');
    assertProblem(await verify('00000000-0000-4000-8000-000000000000', link.token), 404, 'not-found', 'an unknown place');
    assert.equal((await place(cy!.id, cy!.queueToken)).body.status, 'unverified', 'nothing changed');

    const verified = await verify(cy!.id, link.token);
    assert.equal(verified.status, 200);
    assert.equal(verified.body.status, 'waiting');
    const again = await verify(cy!.id, link.token);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, verified.body, 'verified already: nothing changed');

    // Opened: the verified place is ranked, the others not; a verification after the ordering
    // ranks its place next.
    await open(course);
    await tick(course);
    const ranks = async () => Object.fromEntries((await stack.db.sql<{ email: string; rank: number | null; status: string }[]>`
      SELECT email, rank::int, status::text FROM queue_places WHERE course_id = ${course}`).map((r) => [r.email, `${r.status}:${r.rank}`]));
    assert.deepEqual(await ranks(), { [cy!.email]: 'admitted:1', [dee!.email]: 'unverified:null', [eve!.email]: 'unverified:null' });
    assert.equal((await verify(dee!.id, deeLink.token)).body.status, 'waiting');
    assert.deepEqual((await ranks())[dee!.email], 'waiting:2');
    await tick(course);
    await tick(course);
    assert.deepEqual(await ranks(), { [cy!.email]: 'admitted:1', [dee!.email]: 'admitted:2', [eve!.email]: 'unverified:null' }, 'the unverified place is never admitted');
    await assertEveryEventEmailedOnce();
    await assertInvariants(stack.db.sql);
  });

  test('the link sent again to an unverified place verifies it too', async () => {
    const course = await queuedCourse({ capacity: 3, verifyEmail: true });
    const [fay] = await joinAll(course, 'fay', 1);
    assert.equal((await join(course, fay!.email)).status, 200);
    const [, resent] = await waitForMail(fay!.email, 2);
    assert.match(resent!.raw, /confirm your address/);
    const link = pageLink(resent!);
    assert.equal((await verify(fay!.id, link.token)).body.status, 'waiting');
    await assertEveryEventEmailedOnce();
  });

  test('300 joins of a verifyEmail course at once, verified at once before and after opening: each emailed once, ranks 1..n', async () => {
    const course = await queuedCourse({ capacity: 500, verifyEmail: true });
    const joined = await joinAll(course, 'many', 300);
    await assertEveryEventEmailedOnce();
    const links = joined.map((j) => {
      const messages = mailOf(j.email);
      assert.equal(messages.length, 1, `one joined email for ${j.email}`);
      return pageLink(messages[0]!);
    });
    const early = await Promise.all(links.slice(0, 150).map((l) => verify(l.id, l.token)));
    assert.deepEqual(countBy(early, (a) => `${a.status} ${a.body.status}`), { '200 waiting': 150 });
    await open(course);
    // The rest verify while the ticker orders and admits.
    const [late] = await Promise.all([
      Promise.all(links.slice(150).map((l) => verify(l.id, l.token))),
      (async () => { for (let i = 0; i < 5; i++) await tick(course); })(),
    ]);
    assert.deepEqual(countBy(late, (a) => a.status), { 200: 150 });
    const rows = await stack.db.sql<{ rank: number | null }[]>`SELECT rank::int FROM queue_places WHERE course_id = ${course} ORDER BY rank`;
    assert.deepEqual(rows.map((r) => r.rank), Array.from({ length: 300 }, (_, i) => i + 1));
    await assertInvariants(stack.db.sql);
    await assertEveryEventEmailedOnce();
  });
});

describe('webhooks', () => {
  test('queue.joined, queue.admitted and queue.sold-out are posted once per place, signed, with the place', async (t) => {
    const created = await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['queue.joined', 'queue.admitted', 'queue.sold-out'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    t.after(async () => {
      await stack.server.client.admin('DELETE', `/webhooks/${created.body.id}`);
    });
    stack.receiver.setSecret(created.body.secret);
    const course = await queuedCourse({ capacity: 1 });
    const joined = await joinAll(course, 'hook', 3);
    await open(course);
    await tick(course);
    const [first] = await stack.db.sql<{ id: string; email: string }[]>`SELECT id, email FROM queue_places WHERE course_id = ${course} AND status = 'admitted'`;
    const admission = (await place(first!.id, joined.find((j) => j.id === first!.id)!.queueToken)).body.admission;
    assert.equal((await stack.server.client.request('POST', '/register', { body: { name: 'First', email: first!.email, course, admission } })).status, 201);
    await tick(course);

    const ofCourse = () => stack.receiver.received.filter((r) => r.body?.data?.course?.id === course);
    const received = await eventually(async () => ofCourse(), (all) => all.length >= 6);
    assert.ok(received.every((r) => r.verified), 'signed with the webhook\'s secret');
    assert.equal(new Set(received.map((r) => r.id)).size, received.length, 'each delivery posted once');
    assert.deepEqual(countBy(received, (r) => `${r.type} ${r.body.data.place.status}`), { 'queue.joined waiting': 3, 'queue.admitted admitted': 1, 'queue.sold-out sold-out': 2 });
    const admitted = received.find((r) => r.type === 'queue.admitted')!;
    assert.equal(admitted.body.data.place.id, first!.id);
    assert.equal(admitted.body.data.place.email, first!.email);
    assert.ok(!Number.isNaN(Date.parse(admitted.body.data.place.admittedUntil)));
    await assertEveryEventEmailedOnce();
  });
});

describe('without SMTP_URL', () => {
  const local = useStack({ runners: {} });

  test('the built-in mailbox holds each queue email once, with its link', async () => {
    const course = await newCourse(local.server.client, { capacity: 1, opensAt: future(3_600_000), queue: { order: 'arrival' } });
    const joined = await local.server.client.request('POST', `/courses/${course}/queue`, { body: { name: 'Mo', email: 'mo@example.org' } });
    assert.equal(joined.status, 201);
    assert.equal((await local.server.client.request('POST', `/courses/${course}/queue`, { body: { name: 'Mo', email: 'mo@example.org' } })).status, 200);
    const mail = await eventually(async () => (await local.server.client.admin('GET', '/admin/mail?to=mo@example.org')).body.items as { messageId: string; subject: string; text: string }[], (items) => items.length >= 2);
    assert.deepEqual(mail.map((m) => m.subject.replace(/ for .*/, '')).sort(), ['You are in the queue', 'Your link to the queue']);
    assert.equal(new Set(mail.map((m) => m.messageId)).size, 2);
    for (const message of mail) {
      const token = /\/queue\/[0-9a-f-]{36}\/page#token=([A-Za-z0-9_%-]+)/.exec(message.text)?.[1];
      assert.ok(token, 'a page link');
      assert.equal((await local.server.client.request('GET', `/queue/${joined.body.id}`, { token: decodeURIComponent(token) })).status, 200);
    }
  });
});
