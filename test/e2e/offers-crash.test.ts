// The job worker killed with SIGKILL across a waitlist offer's deadline, with nobody looking at the
// course meanwhile: the replacement's first housekeeping tick expires the offer, once, and passes
// the seat on; every email of it arrives once.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import postgres from 'postgres';
import { eventually } from '../support/eventually.ts';
import { type FaultService, liveJobWorkerPids, startFaultService } from '../support/fault-service.ts';
import { student } from '../support/factories.ts';
import { Client } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { embeddedDatabaseUrl, isAlive } from '../support/service-process.ts';

let fault: FaultService | undefined;
let sql: postgres.Sql | undefined;

after(async () => {
  await sql?.end();
  await fault?.stop();
});

const jobWorkers = () => liveJobWorkerPids(sql!);

test('SIGKILL of the job worker across an offer\'s deadline: the replacement expires it once and offers the seat on', async () => {
  fault = await startFaultService({ name: 'offercrash', workers: 1, emailConcurrency: 4, smtpDelayMs: 0 });
  const { smtp } = fault;
  sql = postgres(await embeddedDatabaseUrl(fault.dataDir), { max: 2, onnotice: () => {} });
  const client = new Client(fault.baseUrl);

  // 0.002 h = 7.2 s: time to see the worker killed before the deadline.
  const course = 'offer-crash';
  assert.equal((await client.admin('POST', '/courses', { id: course, title: 'Crash', capacity: 1, waitlistCapacity: 3, promotion: 'offer', offerHours: 0.002 })).status, 201);
  const created = [];
  for (let i = 0; i < 3; i += 1) created.push((await client.register(student(course, i, 'oc'))).body);
  const [ann, bob, cy] = created;
  const [first] = await eventually(jobWorkers, (rows) => rows.length === 1, 90_000);
  const killed = first!;

  assert.equal((await client.request('DELETE', `/registrations/${ann.id}`, { token: ann.manageToken })).status, 200);
  const [offer] = await sql<{ left_ms: number }[]>`
    SELECT (extract(epoch FROM offer_until - clock_timestamp()) * 1000)::float8 AS left_ms FROM registrations WHERE id = ${bob.id}`;
  assert.ok(offer!.left_ms > 0, 'bob holds the seat');
  // The job worker dies before the deadline; from here on nobody reads or changes the course.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, offer!.left_ms - 2_000)));
  process.kill(killed, 'SIGKILL');
  await eventually(async () => isAlive(killed), (alive) => !alive, 90_000);

  const expired = await eventually(() => sql!<{ kind: string; actor: string; reason: string }[]>`
    SELECT kind, actor, reason FROM registration_events WHERE registration_id = ${bob.id} AND kind = 'expired'`, (rows) => rows.length > 0, 90_000);
  const [replacement] = await eventually(jobWorkers, (pids) => pids.length === 1 && pids[0] !== killed, 90_000);
  assert.notEqual(replacement, killed);
  assert.deepEqual(expired.map((e) => ({ ...e })), [{ kind: 'expired', actor: 'system', reason: 'offer expired after 0.002 h' }]);
  const [decided] = await sql<{ after_deadline: boolean }[]>`
    SELECT e.created_at >= o.offer_until - interval '1 second' AS after_deadline
    FROM registration_events e JOIN registration_events o ON o.registration_id = e.registration_id AND o.kind = 'offered'
    WHERE e.registration_id = ${bob.id} AND e.kind = 'expired'`;
  assert.ok(decided!.after_deadline, 'the expiry was decided at the deadline, not before');

  // The seat passed to cy, once; a later tick changes nothing.
  const cyOffer = await eventually(() => sql!<{ kind: string }[]>`SELECT kind FROM registration_events WHERE registration_id = ${cy.id} ORDER BY id`, (rows) => rows.some((r) => r.kind === 'offered'), 90_000);
  assert.deepEqual(cyOffer.map((r) => r.kind), ['waitlisted', 'offered']);
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const ends = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registration_events WHERE course_id = ${course} AND kind IN ('expired', 'offered')`;
  assert.equal(ends[0]!.n, 3, 'bob offered and expired once, cy offered once');
  const late = await client.request('POST', `/registrations/${bob.id}/offer/accept`, { token: bob.manageToken });
  assert.equal(late.status, 409);
  assert.equal(late.body.type, '/problems/offer-expired');

  // Every email of the course once: bob's offer and its expiry included.
  const events = await sql<{ id: string; kind: string; registration_id: string }[]>`SELECT id::text, kind, registration_id FROM registration_events WHERE course_id = ${course}`;
  const expected = new Set(events.map((e) => `<registrar.${e.registration_id}.${e.kind}.${e.id}@127.0.0.1>`));
  await eventually(async () => new Set(smtp.messages.map((m) => m.messageId).filter((id) => expected.has(id))).size, (n) => n === expected.size, 90_000);
  const copies = smtp.messages.filter((m) => expected.has(m.messageId)).length - expected.size;
  assert.ok(copies <= 1, `${copies} copies: at most the one in flight at the kill`);
  await assertInvariants(sql);
});
