// Load shedding and the waiting room: with the shedder forced on (a database backlog bound below
// zero, so every request finds the service overloaded), admitted students still register, bots
// without an admission get 403 not-admitted instead of 503, and everything else is shed as before.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { FULL_COURSE_RECHECK_MS } from '../../src/domain/full-courses.ts';
import { newCourse } from '../support/factories.ts';
import { assertProblem, startTestServer } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ poolSize: 10 });

const STUDENTS = 20;
const BOTS = 60;

test('overloaded: admitted registrations get 201, registrations without an admission 403, the rest 503 as before', async (t) => {
  const client = stack.server.client;
  const overloaded = await startTestServer(stack.db.sql, { shedding: { maxEventLoopDelayMs: 60_000, maxDatabaseBacklog: -1 } });
  t.after(() => overloaded.close());
  const course = await newCourse(client, { capacity: STUDENTS, waitlistCapacity: 0, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'arrival' } });
  const other = await newCourse(client, { capacity: 5 });
  const joined = await Promise.all(Array.from({ length: STUDENTS }, async (_, i) => {
    const email = `shed${i}@example.org`;
    const answer = await client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${i}`, email } });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return { id: answer.body.id as string, email, queueToken: answer.body.queueToken as string };
  }));
  assert.equal((await client.admin('PATCH', `/courses/${course}`, { opensAt: new Date(Date.now() - 1_000).toISOString() })).status, 200);
  const admitted = await admitFromQueue(stack.db.sql, course);
  assert.deepEqual(admitted, { ...admitted, outcome: 'admitting', admitted: STUDENTS });
  const admissions = await Promise.all(joined.map(async (j) => (await client.request('GET', `/queue/${j.id}`, { token: j.queueToken })).body.admission as string));
  const bot = (i: number) => ({ name: `Bot ${i}`, email: `bot${i}@example.org`, course });

  // A course this process never heard is queued: a registration without an admission, or with
  // one that cannot be an admission, is shed like any other; one with an admission goes to the
  // database (a worker started into the overload meets admitted students before any refusal).
  assertProblem(await overloaded.client.request('POST', '/register', { body: bot(0) }), 503, 'overloaded', 'a course not known queued');
  assertProblem(await overloaded.client.request('POST', '/register', { body: { ...bot(0), admission: 'not-an-admission' } }), 503, 'overloaded', 'not shaped like an admission');
  const [first, ...rest] = joined;
  const firstAnswer = await overloaded.client.request('POST', '/register', { body: { name: 'Student 0', email: first!.email, course, admission: admissions[0] } });
  assert.equal(firstAnswer.status, 201, JSON.stringify(firstAnswer.body));
  assertProblem(await overloaded.client.request('POST', '/register', { body: { ...bot(0), admission: 'A'.repeat(43) } }), 403, 'not-admitted', 'a forged admission for a course not known queued: the database decides');
  // The database's not-admitted (through the server that does not shed) teaches the pool's memory.
  assertProblem(await client.request('POST', '/register', { body: bot(0) }), 403, 'not-admitted', 'from the database');

  const [students, bots, forged] = await Promise.all([
    Promise.all(rest.map((j, i) => overloaded.client.request('POST', '/register', { body: { name: `Student ${i + 1}`, email: j.email, course, admission: admissions[i + 1] } }))),
    Promise.all(Array.from({ length: BOTS }, (_, i) => overloaded.client.request('POST', '/register', { body: bot(i) }))),
    overloaded.client.request('POST', '/register', { body: { ...bot(BOTS), admission: 'forged-admission-token-forged-admission' } }),
  ]);
  assert.deepEqual(students.map((a) => a.status), students.map(() => 201), JSON.stringify(students.filter((a) => a.status !== 201).map((a) => a.body)));
  for (const answer of bots) assertProblem(answer, 403, 'not-admitted', 'a bot without an admission');
  assertProblem(forged, 403, 'not-admitted', 'a forged admission, decided by the database');

  // Past the short memory, the requests without an admission are still refused 403: one goes to
  // the database and renews it, the others are refused from the long memory meanwhile.
  await sleep(FULL_COURSE_RECHECK_MS + 50);
  for (const answer of await Promise.all(Array.from({ length: BOTS }, (_, i) => overloaded.client.request('POST', '/register', { body: bot(i) })))) {
    assertProblem(answer, 403, 'not-admitted', 'after the short memory lapsed');
  }

  // Everything else is shed as before: another course's registrations, a registration body too
  // long to read first, reads and joins. Operations routes never are.
  assertProblem(await overloaded.client.request('POST', '/register', { body: { name: 'Someone', email: 'someone@example.org', course: other } }), 503, 'overloaded', 'a course without a queue');
  assertProblem(await overloaded.client.request('POST', '/register', { body: { ...bot(0), name: 'x'.repeat(5_000) } }), 503, 'overloaded', 'a long body, shed unread (read, it would be 400)');
  assertProblem(await overloaded.client.request('GET', `/courses/${course}`), 503, 'overloaded', 'a read');
  assertProblem(await overloaded.client.request('POST', `/courses/${course}/queue`, { body: { name: 'Late', email: 'late@example.org' } }), 503, 'overloaded', 'a join');
  assert.equal((await overloaded.client.request('GET', '/health')).status, 200);

  const registered = await stack.db.sql<{ count: number }[]>`SELECT count(*)::int AS count FROM registrations WHERE course_id = ${course}`;
  assert.equal(registered[0]!.count, STUDENTS, 'only the admitted students registered');
});

test('overloaded: registrations with an admission are let through up to a bound per course, then only live ones', async (t) => {
  const client = stack.server.client;
  const shedding = { maxEventLoopDelayMs: 60_000, maxDatabaseBacklog: -1 };
  const none = await startTestServer(stack.db.sql, { shedding: { ...shedding, maxAdmissionsInFlight: 0 } });
  t.after(() => none.close());
  const one = await startTestServer(stack.db.sql, { shedding: { ...shedding, maxAdmissionsInFlight: 1 } });
  t.after(() => one.close());
  const course = await newCourse(client, { capacity: 5, waitlistCapacity: 0, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'arrival' } });
  assert.equal((await client.admin('PATCH', `/courses/${course}`, { opensAt: new Date(Date.now() - 1_000).toISOString() })).status, 200);
  const forged = (i: number) => ({ name: `Bot ${i}`, email: `forger${i}@example.org`, course, admission: `forged-admission-${i}-forged-admission-token` });
  // Not known queued yet: with a bound of 0 an admission-shaped one is shed too (one bound over
  // all such courses).
  assertProblem(await none.client.request('POST', '/register', { body: { ...forged(1), admission: 'B'.repeat(43) } }), 503, 'overloaded', 'not known queued, over the bound');
  // Teach the pool's memory that the course is queued.
  assertProblem(await client.request('POST', '/register', { body: forged(0) }), 403, 'not-admitted', 'from the database');

  // A bound of 0: every registration with an admission is shed, as any request, but one whose
  // admission is live (probed over the bound): forged admissions filling the bound do not turn
  // an admitted student away.
  assertProblem(await none.client.request('POST', '/register', { body: forged(1) }), 503, 'overloaded', 'over the bound');
  const join = await client.request('POST', `/courses/${course}/queue`, { body: { name: 'Admitted', email: 'admitted@example.org' } });
  assert.equal(join.status, 201, JSON.stringify(join.body));
  assert.equal((await admitFromQueue(stack.db.sql, course)).outcome, 'admitting');
  const place = await client.request('GET', `/queue/${join.body.id}`, { token: join.body.queueToken });
  assert.equal(place.body.status, 'admitted', JSON.stringify(place.body));
  const admitted = { name: 'Admitted', email: 'admitted@example.org', course, admission: place.body.admission as string };
  assertProblem(await none.client.request('POST', '/register', { body: { ...admitted, course: 'another-course' } }), 503, 'overloaded', 'live, but for another course');
  const registeredAnswer = await none.client.request('POST', '/register', { body: admitted });
  assert.equal(registeredAnswer.status, 201, JSON.stringify(registeredAnswer.body));
  assertProblem(await none.client.request('POST', '/register', { body: admitted }), 503, 'overloaded', 'the admission used: no longer live');
  // A bound of 1, one after another: each is let through once the one before is answered.
  for (let i = 2; i < 7; i++) {
    assertProblem(await one.client.request('POST', '/register', { body: forged(i) }), 403, 'not-admitted', `forged admission ${i}, decided by the database`);
  }
  const registered = await stack.db.sql<{ email: string }[]>`SELECT email FROM registrations WHERE course_id = ${course}`;
  assert.deepEqual(registered.map((r) => r.email), ['admitted@example.org'], 'only the admitted student registered');
});

test('overloaded: a registration body trickled slower than the deadline gets 408 and its connection closed, not a held slot', async (t) => {
  const overloaded = await startTestServer(stack.db.sql, { shedding: { maxEventLoopDelayMs: 60_000, maxDatabaseBacklog: -1 } });
  t.after(() => overloaded.close());
  const body = JSON.stringify({ name: 'Slow', email: 'slow@example.org', course: 'some-course', admission: 'A'.repeat(43) });
  const { port } = new URL(overloaded.url);
  const socket = connect(Number(port), '127.0.0.1');
  t.after(() => socket.destroy());
  let answer = '';
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1'); });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
  // One byte every 100 ms: the whole body would take about 10 s; the answer comes first.
  let sent = 0;
  while (sent < body.length && answer === '' && !socket.destroyed) {
    socket.write(body[sent]!);
    sent += 1;
    await sleep(100);
  }
  await closed;
  assert.ok(sent < body.length, `answered before the body was complete (${sent} of ${body.length} bytes sent)`);
  const [head, json] = answer.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 408 /);
  assert.match(head!, /\r\nconnection: close\r\n/i);
  assert.equal(JSON.parse(json!).type, '/problems/request-timeout');
});
