// The waiting room under SIGKILL (issue 14, SPEC invariants 4, 6 and 8), on one running service
// (two HTTP workers, the job worker ticking admissions and sending to a real SMTP server): a few
// hundred students join while an HTTP worker is killed, then at opening they poll their places
// and register with their admissions while an HTTP worker and then the job worker are killed.
// Afterwards, from the rows and the mail: every email still holds its one place, no place was
// admitted twice, seats went in queue order, and every email arrived once (a copy only for a
// message the killed job worker had sent and not yet recorded, with the same Message-ID).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test, type TestContext } from 'node:test';
import postgres from 'postgres';
import { Agent } from 'undici';
import { ADMIN_HEADERS, calmRequest, type FaultService, liveJobWorkerPids, startFaultService } from '../support/fault-service.ts';
import { assertInvariants, countEmailedEvents } from '../support/invariants.ts';
import { processStartedAt } from '../support/processes.ts';
import { pageLink } from '../support/queue-mail.ts';
import { countBy, failureReason, isSettled, type Outcome, resendUntilSettled, runClosedLoop, send, until } from '../support/rush.ts';
import type { ReceivedMessage, TestSmtpServer } from '../support/smtp-server.ts';
import { collectWorkerPids, embeddedDatabaseUrl, getHealth, isAlive, tail } from '../support/service-process.ts';

const COURSE = 'queue-faults';
const CAPACITY = 100;
const WAITLIST_CAPACITY = 20;
const SEATS = CAPACITY + WAITLIST_CAPACITY;
const STUDENTS = 300;
/** Students who also join a second time, right after the first (in upper case): 330 joins in the rush. */
const DUPLICATED = 30;
/** Joins in flight at once, on keep-alive connections spread over both HTTP workers. */
const JOIN_CONCURRENCY = 48;
const EMAIL_CONCURRENCY = 4;
/** Long enough per message that the job worker's kill lands while messages are in flight. */
const SMTP_DELAY_MS = 30;
/** The kills, by registrations answered 201 so far: an HTTP worker, then the job worker. */
const KILL_HTTP_WORKER_AT = 20;
const KILL_JOB_WORKER_AT = 60;
const RECOVERY_TIMEOUT_MS = 60_000;
/** The rush ends when every student is registered or told sold-out; bounded. */
const RUSH_TIMEOUT_MS = 150_000;
const RETRY_OPTIONS = { concurrency: 16, timeoutMs: 60_000, pauseMs: 500 };
const QUEUE_MESSAGE_ID = /^<registrar\.queue\.([0-9a-f-]{36})\.(joined|link|admitted|sold-out)\.(\d+)@[^>]+>$/;
const REGISTRATION_MESSAGE_ID = /^<registrar\.([0-9a-f-]{36})\.(enrolled|waitlisted|promoted|cancelled|reminder)\.(\d+)@[^>]+>$/;

type Student = { email: string; name: string };
/** A student's place as they know it: from the 201, or from the link in its email when that answer was lost. */
type Known = Student & { id: string; token: string; from: 'answer' | 'email' };
type Finish = { status: 'registered' | 'sold-out'; registration?: { status: number; id?: string }; polls: number; transportFailures: number };

let fault: FaultService | undefined;
let baseUrl: string;
let smtp: TestSmtpServer;
let sql: postgres.Sql | undefined;
// The joins on a pool of their own; the students' polls share another, as browsers behind a proxy would.
const rushDispatcher = new Agent({ connections: JOIN_CONCURRENCY, pipelining: 1 });
const studentDispatcher = new Agent({ connections: 128, pipelining: 1, keepAliveTimeout: 2_000 });

before(async () => {
  fault = await startFaultService({ name: 'queue-faults', workers: 2, emailConcurrency: EMAIL_CONCURRENCY, smtpDelayMs: SMTP_DELAY_MS });
  ({ baseUrl, smtp } = fault);
  sql = postgres(await embeddedDatabaseUrl(fault.dataDir), { max: 2, onnotice: () => {}, connect_timeout: 5 });
});

after(async () => {
  await rushDispatcher.destroy().catch(() => undefined);
  await studentDispatcher.destroy().catch(() => undefined);
  await sql?.end({ timeout: 5 }).catch(() => undefined);
  await fault?.stop();
});

function calm(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  return calmRequest(baseUrl, method, urlPath, { dispatcher: studentDispatcher, headers: ADMIN_HEADERS, body });
}

function answerOf(outcome: Outcome): { status: number; body: any } {
  if (!outcome.ok) throw new Error(`no answer: ${failureReason(outcome.error)}`);
  return outcome.answer;
}

/**
 * The joins: every student (some twice), JOIN_CONCURRENCY at a time, an HTTP worker killed once
 * `killAfter` answers are back; each join without a real answer is sent again until it has one.
 * Returns, per email key, every real answer its joins got.
 */
async function joinDuringKill(t: TestContext, students: Student[], killAfter: number): Promise<Map<string, { status: number; body: any }[]>> {
  const bodies = students.flatMap((s, i) => (i < DUPLICATED ? [s, { ...s, email: s.email.toUpperCase() }] : [s])).map((body) => ({ key: body.email.toLowerCase(), body }));
  const before = await collectWorkerPids(baseUrl, (pids) => pids.size >= 2);
  const victim = (await getHealth(baseUrl)).body!.pid!;
  let answered = 0;
  const sent = await runClosedLoop(bodies.length, JOIN_CONCURRENCY, async (index) => {
    const { key, body } = bodies[index]!;
    const outcome = await send(baseUrl, 'POST', `/courses/${COURSE}/queue`, { dispatcher: rushDispatcher, body });
    if (++answered === killAfter) process.kill(victim, 'SIGKILL');
    return { key, body, outcome };
  });
  const replaced = await collectWorkerPids(baseUrl, (pids) => [...pids].some((pid) => !before.has(pid)), RECOVERY_TIMEOUT_MS);
  assert.equal(isAlive(victim), false, 'the HTTP worker was killed during the joins');
  assert.ok(!replaced.has(victim));
  const failed = sent.filter((s) => !isSettled(s.outcome));
  t.diagnostic(`joins: ${bodies.length} sent, HTTP worker ${victim} killed after ${killAfter} answers: ${JSON.stringify(countBy(sent, (s) => (s.outcome.ok ? s.outcome.answer.status : failureReason(s.outcome.error))))}`);
  assert.ok(!sent.some((s) => !s.outcome.ok && s.outcome.timedOut), 'a join had no answer within the deadline');
  const { settled, unsettled, rounds } = await resendUntilSettled(failed, (s) => send(baseUrl, 'POST', `/courses/${COURSE}/queue`, { dispatcher: studentDispatcher, body: s.body, timeoutMs: 10_000 }), RETRY_OPTIONS);
  assert.equal(unsettled.length, 0, `${unsettled.length} joins still without an answer after ${rounds} rounds`);
  if (settled.length > 0) t.diagnostic(`joins: ${settled.length} sent again (${rounds} rounds): ${JSON.stringify(countBy(settled, (s) => answerOf(s.outcome).status))}`);
  const answers = new Map<string, { status: number; body: any }[]>();
  for (const s of [...sent.filter((x) => isSettled(x.outcome)), ...settled]) answers.set(s.key, [...(answers.get(s.key) ?? []), answerOf(s.outcome)]);
  return answers;
}

/** Messages to this address, in arrival order. */
/** A place's emails go to the address its first join sent, which may be another case of it
 *  (the duplicated students also join in upper case): addresses are compared by email key. */
function mailTo(email: string): ReceivedMessage[] {
  const key = email.toLowerCase();
  return smtp.messages.filter((m) => m.to.some((to) => to.toLowerCase() === key));
}

/**
 * One student from the opening on: polls the place with its token (a dropped connection or a
 * 503 is asked again) until admitted, then registers with the admission (sent again, the same,
 * until a real answer); or until told sold-out.
 */
async function attend(known: Known, deadline: number, onRegistered: () => void): Promise<Finish> {
  let polls = 0;
  let transportFailures = 0;
  const bearer = { authorization: `Bearer ${known.token}` };
  while (Date.now() < deadline) {
    polls += 1;
    const seen = await send(baseUrl, 'GET', `/queue/${known.id}`, { dispatcher: studentDispatcher, headers: bearer, timeoutMs: 10_000 });
    if (!isSettled(seen)) {
      transportFailures += 1;
      await sleep(200);
      continue;
    }
    assert.equal(seen.answer.status, 200, `${known.email}: GET its place: ${seen.answer.status} ${JSON.stringify(seen.answer.body)}`);
    const place = seen.answer.body;
    assert.equal(place.id, known.id);
    if (place.status === 'sold-out') return { status: 'sold-out', polls, transportFailures };
    assert.ok(['waiting', 'admitted'].includes(place.status), `${known.email}: a place waiting, admitted or sold-out, not ${place.status}`);
    if (place.status === 'waiting') {
      await sleep(300 + Math.random() * 300);
      continue;
    }
    const body = { name: known.name, email: known.email, course: COURSE, admission: place.admission };
    for (;;) {
      const registered = await send(baseUrl, 'POST', '/register', { dispatcher: studentDispatcher, body, timeoutMs: 10_000 });
      if (isSettled(registered)) {
        const { status, body: answer } = registered.answer;
        assert.ok(status === 201 || (status === 200 && answer.alreadyRegistered === true), `${known.email}: registering with its admission: ${status} ${JSON.stringify(answer)}`);
        if (status === 201) onRegistered();
        return { status: 'registered', registration: { status, id: answer.id }, polls, transportFailures };
      }
      transportFailures += 1;
      assert.ok(Date.now() < deadline, `${known.email}: no answer to its registration by the deadline`);
      await sleep(200);
    }
  }
  assert.fail(`${known.email}: neither registered nor sold out within ${RUSH_TIMEOUT_MS} ms`);
}

test('SIGKILL of an HTTP worker during the joins, and of an HTTP worker and the job worker at opening: every place kept, admitted once, in order; every email once', { timeout: 400_000 }, async (t) => {
  const created = await calm('POST', '/courses', {
    id: COURSE, title: 'Queue under faults', capacity: CAPACITY, waitlistCapacity: WAITLIST_CAPACITY,
    opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'random', admissionSeconds: 300 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const students: Student[] = Array.from({ length: STUDENTS }, (_, i) => ({ email: `student${i}@example.org`, name: `Student ${i}` }));

  // ---- The joins, an HTTP worker killed among them: a 201, or a failure whose retry gets 201 or
  // 200 alreadyQueued; never two places for one email.
  const joins = await joinDuringKill(t, students, 40);
  const known: Known[] = [];
  let fromEmail = 0;
  for (const s of students) {
    const answers = joins.get(s.email) ?? [];
    assert.ok(answers.length > 0, `${s.email}: a join answered`);
    for (const a of answers) {
      assert.ok(a.status === 201 || a.status === 200, `${s.email}: join answered ${a.status} ${JSON.stringify(a.body)}`);
      if (a.status === 200) assert.deepEqual(Object.keys(a.body).sort(), ['alreadyQueued', 'course', 'email'], 'a 200 shows nothing stored');
    }
    const placesCreated = answers.filter((a) => a.status === 201);
    assert.ok(placesCreated.length <= 1, `${s.email}: ${placesCreated.length} joins answered 201`);
    if (placesCreated[0]) {
      known.push({ ...s, id: placesCreated[0].body.id, token: placesCreated[0].body.queueToken, from: 'answer' });
      continue;
    }
    // The 201 was lost with the worker: the place's link is in its emails (joined, and the link
    // sent again on the second join).
    const [message] = await until(async () => mailTo(s.email), (messages) => messages.length > 0, `${s.email}: an email with its place's link`);
    known.push({ ...s, ...pageLink(message!), from: 'email' });
    fromEmail += 1;
  }
  const places = await sql!<{ id: string; email_key: string; status: string }[]>`SELECT id, email_key, status::text FROM queue_places WHERE course_id = ${COURSE}`;
  assert.equal(places.length, STUDENTS, 'one place per student');
  const placeOf = new Map(places.map((p) => [p.email_key, p]));
  assert.equal(placeOf.size, STUDENTS, 'one place per email');
  for (const k of known) assert.equal(placeOf.get(k.email)?.id, k.id, `${k.email}: the place it knows (from its ${k.from}) is the one stored`);
  t.diagnostic(`joins: ${STUDENTS} places, ${fromEmail} known from their email only (the 201 was lost)`);

  // ---- The opening: every student polls and registers; an HTTP worker, then the job worker
  // (the admission ticker and the email sender) are killed mid-rush.
  const workersBefore = await collectWorkerPids(baseUrl, (pids) => pids.size >= 2);
  const httpVictim = (await getHealth(baseUrl)).body!.pid!;
  const [jobVictim] = await until(() => liveJobWorkerPids(sql!), (pids) => pids.length === 1, 'one job worker heartbeat');
  let registered = 0;
  let httpKilledAt = 0;
  let jobKilledAt = 0;
  let inFlightAtJobKill = 0;
  const onRegistered = () => {
    registered += 1;
    if (registered === KILL_HTTP_WORKER_AT) {
      process.kill(httpVictim, 'SIGKILL');
      httpKilledAt = Date.now();
    }
    if (registered === KILL_JOB_WORKER_AT) killJobWorker = killWhileSending();
  };
  // The job worker dies while a message of its is at the SMTP server, if one comes within 2 s.
  let killJobWorker: Promise<void> | undefined;
  const killWhileSending = async () => {
    for (let i = 0; i < 400 && smtp.inProgress.now === 0; i++) await sleep(5);
    inFlightAtJobKill = smtp.inProgress.now;
    process.kill(jobVictim!, 'SIGKILL');
    jobKilledAt = Date.now();
  };
  const opened = await calm('PATCH', `/courses/${COURSE}`, { opensAt: new Date(Date.now() - 1_000).toISOString() });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const deadline = Date.now() + RUSH_TIMEOUT_MS;
  const finishes = await Promise.all(known.map((k) => attend(k, deadline, onRegistered)));
  await killJobWorker;
  assert.ok(httpKilledAt > 0 && jobKilledAt > 0, 'both kills came mid-rush');
  t.diagnostic(`rush: ${JSON.stringify(countBy(finishes, (f) => `${f.status}${f.registration ? ` ${f.registration.status}` : ''}`))}; ${finishes.reduce((n, f) => n + f.polls, 0)} polls, ${finishes.reduce((n, f) => n + f.transportFailures, 0)} dropped or 503 and asked again; HTTP worker ${httpVictim} killed after ${KILL_HTTP_WORKER_AT} registrations, job worker ${jobVictim} after ${KILL_JOB_WORKER_AT} (${inFlightAtJobKill} messages in flight at the SMTP server)`);

  const workersAfter = await collectWorkerPids(baseUrl, (pids) => [...pids].filter((pid) => !workersBefore.has(pid)).length >= 1, RECOVERY_TIMEOUT_MS);
  assert.equal(isAlive(httpVictim), false);
  assert.ok(!workersAfter.has(httpVictim), 'the killed HTTP worker was replaced');
  const [jobReplacement] = await until(() => liveJobWorkerPids(sql!), (pids) => pids.length === 1 && pids[0] !== jobVictim, 'a replacement job worker', RECOVERY_TIMEOUT_MS);
  assert.equal(isAlive(jobVictim!), false);
  const replacementStartedAt = await processStartedAt(jobReplacement!);
  t.diagnostic(`replaced: HTTP workers now ${[...workersAfter].join(', ')}, job worker ${jobReplacement} (started ${Math.round(replacementStartedAt - jobKilledAt)} ms after the kill)`);


  // ---- From the rows: every place kept, admitted at most once, seats in queue order.
  assert.deepEqual(countBy(finishes, (f) => f.status), { registered: SEATS, 'sold-out': STUDENTS - SEATS });
  const rows = await sql!<{ id: string; email_key: string; status: string; rank: number; admitted: boolean; registration_id: string | null }[]>`
    SELECT id, email_key, status::text, rank::int, admitted_at IS NOT NULL AS admitted, registration_id FROM queue_places WHERE course_id = ${COURSE}`;
  assert.equal(rows.length, STUDENTS);
  const rowOf = new Map(rows.map((r) => [r.email_key, r]));
  for (const [i, k] of known.entries()) {
    const row = rowOf.get(k.email)!;
    assert.equal(row.id, k.id, `${k.email}: still its place`);
    assert.equal(row.status, finishes[i]!.status, `${k.email}: stored as it was told`);
  }
  const admitted = rows.filter((r) => r.admitted);
  assert.equal(admitted.length, SEATS, 'exactly the seats and waitlist places were admitted');
  assert.deepEqual(admitted.map((r) => r.rank).sort((a, b) => a - b), Array.from({ length: SEATS }, (_, i) => i + 1), 'admitted by rank: the first ranks, no one skipped');
  const registrations = await sql!<{ id: string; email_key: string; status: string }[]>`SELECT id, email_key, status FROM registrations WHERE course_id = ${COURSE}`;
  assert.deepEqual(countBy(registrations, (r) => r.status), { enrolled: CAPACITY, waitlisted: WAITLIST_CAPACITY });
  const registrationOf = new Map(registrations.map((r) => [r.id, r]));
  for (const r of admitted) assert.equal(registrationOf.get(r.registration_id!)?.email_key, r.email_key, `${r.email_key}: its place is consumed by its own registration`);
  for (const [i, f] of finishes.entries()) {
    if (f.registration?.status === 201) assert.equal(f.registration.id, rowOf.get(known[i]!.email)!.registration_id, 'the 201 names the stored registration');
  }
  const [events] = await sql!<{ admitted_events: number; admitted_places: number; admitted_total: number }[]>`
    SELECT (SELECT count(*) FROM queue_events e JOIN queue_places p ON p.id = e.place_id WHERE p.course_id = ${COURSE} AND e.kind = 'admitted')::int AS admitted_events,
           (SELECT count(DISTINCT e.place_id) FROM queue_events e JOIN queue_places p ON p.id = e.place_id WHERE p.course_id = ${COURSE} AND e.kind = 'admitted')::int AS admitted_places,
           (SELECT admitted_total FROM queue_states WHERE course_id = ${COURSE})::int AS admitted_total`;
  assert.deepEqual({ ...events }, { admitted_events: SEATS, admitted_places: SEATS, admitted_total: SEATS }, 'one admission and one admitted email per admitted place');
  await assertInvariants(sql!);

  // ---- Every email once (SPEC invariant 4): one Message-ID per event, about its place or
  // registration and to its address; a copy only of a message the killed job worker had sent
  // (it died before recording it), once, and at most one per connection it had open.
  await until(
    async () => {
      const [state] = await sql!<{ jobs: number }[]>`SELECT count(*)::int AS jobs FROM graphile_worker._private_jobs`;
      return { jobs: state!.jobs, events: await countEmailedEvents(sql!), received: new Set(smtp.messages.map((m) => m.messageId)).size };
    },
    (s) => s.jobs === 0 && s.received >= s.events, 'every email sent', 90_000, 250);
  const queueEvents = await sql!<{ id: string; place_id: string; kind: string; email_key: string }[]>`
    SELECT e.id::text, e.place_id, e.kind, p.email_key FROM queue_events e JOIN queue_places p ON p.id = e.place_id`;
  const registrationEvents = await sql!<{ id: string; registration_id: string; kind: string; email_key: string }[]>`
    SELECT e.id::text, e.registration_id::text, e.kind, r.email_key FROM registration_events e JOIN registrations r ON r.id = e.registration_id`;
  assert.equal(queueEvents.length + registrationEvents.length, await countEmailedEvents(sql!));
  const expected = new Map<string, { subject: string; kind: string; to: string }>();
  for (const e of queueEvents) expected.set(e.id, { subject: e.place_id, kind: e.kind, to: e.email_key });
  for (const e of registrationEvents) expected.set(e.id, { subject: e.registration_id, kind: e.kind, to: e.email_key });
  const copiesOf = new Map<string, ReceivedMessage[]>();
  const idsPerEvent = new Map<string, Set<string>>();
  for (const m of smtp.messages) {
    const match = QUEUE_MESSAGE_ID.exec(m.messageId) ?? REGISTRATION_MESSAGE_ID.exec(m.messageId);
    assert.ok(match, `a Message-ID of ours: ${m.messageId}`);
    const [, subject, kind, eventId] = match;
    assert.deepEqual({ subject, kind, to: m.to.map((to) => to.toLowerCase()).join() }, expected.get(eventId!), `message ${m.messageId} is about its event's place or registration, to its address`);
    copiesOf.set(m.messageId, [...(copiesOf.get(m.messageId) ?? []), m]);
    idsPerEvent.set(eventId!, (idsPerEvent.get(eventId!) ?? new Set()).add(m.messageId));
  }
  assert.deepEqual([...idsPerEvent.keys()].sort(), [...expected.keys()].sort(), 'an email for each committed event, none for anything else');
  for (const [eventId, ids] of idsPerEvent) assert.equal(ids.size, 1, `event ${eventId}: one Message-ID`);
  const copied = [...copiesOf.values()].filter((copies) => copies.length > 1);
  for (const copies of copied) {
    assert.equal(copies.length, 2, `${copies[0]!.messageId}: at most one copy`);
    // The first copy came from the killed worker, the copy from its replacement: no job worker
    // ran between the kill and the replacement's start, so the data of each tells whose it was
    // (when the server accepted it does not: that is after its delay, and may come after the kill).
    assert.ok(copies[0]!.dataAt < replacementStartedAt && copies[1]!.dataAt > replacementStartedAt,
      `${copies[0]!.messageId}: first sent by the killed job worker, the copy by its replacement (their data came ${copies.map((c) => `${c.dataAt - jobKilledAt} ms`).join(' and ')} after the kill, the replacement started ${replacementStartedAt - jobKilledAt} ms after it)`);
  }
  assert.ok(copied.length <= EMAIL_CONCURRENCY, `${copied.length} messages copied; at most the ${EMAIL_CONCURRENCY} the job worker could have had in flight`);
  const kinds = countBy(smtp.messages.filter((m, i, all) => all.findIndex((x) => x.messageId === m.messageId) === i), (m) => (QUEUE_MESSAGE_ID.exec(m.messageId) ?? REGISTRATION_MESSAGE_ID.exec(m.messageId))![2]!);
  assert.equal(kinds.joined, STUDENTS, 'one joined email per place');
  assert.equal(kinds.admitted, SEATS, 'one admitted email per admitted place');
  assert.equal(kinds['sold-out'], STUDENTS - SEATS, 'one sold-out email per place told so');
  assert.equal((kinds.enrolled ?? 0) + (kinds.waitlisted ?? 0), SEATS, 'one registration email per registration');
  t.diagnostic(`emails: ${JSON.stringify(kinds)}; ${smtp.messages.length} messages received, ${copied.length} copies with the same Message-ID; service output tail:\n${tail(fault!.service.output(), 3)}`);
});
