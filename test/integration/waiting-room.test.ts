// The waiting room over real HTTP against a real PostgreSQL: joins at once, the ordering done
// once under concurrent ticks, admission in rank order by several tickers at once, a rush of
// admitted students among requests without or with forged admissions, expiry, sold-out, and
// SPEC invariant 8 checked on what is stored.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { configureFullCourses, observeFastRefusals } from '../../src/domain/full-courses.ts';
import { admitFromQueues } from '../../src/domain/queue.service.ts';
import { DomainError } from '../../src/domain/domain-error.ts';
import { registerStudent } from '../../src/domain/registration.service.ts';
import { startHousekeeping } from '../../src/jobs/housekeeping.ts';
import { newCourse, type CourseOptions } from '../support/factories.ts';
import { type Answer, assertProblem } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy } from '../support/rush.ts';
import { eventually } from '../support/eventually.ts';
import { inOneWindow } from '../support/rate-limit-window.ts';
import { useStack } from '../support/stack.ts';
import { readStoredState } from '../support/stored-state.ts';

// The database's "queued" and "full" are trusted for a minute here, so that the refusals made
// from memory can be counted without depending on how fast the machine is.
const stack = useStack({ poolSize: 30 }, (stack) => configureFullCourses(stack.db.sql, { recheckMs: 60_000 }));

const past = (ms: number) => new Date(Date.now() - ms).toISOString();
const future = (ms: number) => new Date(Date.now() + ms).toISOString();

type Joined = { id: string; email: string; queueToken: string };

function queuedCourse(options: CourseOptions & { order?: 'random' | 'arrival'; admissionSeconds?: number }): Promise<string> {
  const { order, admissionSeconds, ...course } = options;
  return newCourse(stack.server.client, { ...course, queue: { order: order ?? 'random', ...(admissionSeconds ? { admissionSeconds } : {}) } });
}

function join(course: string, n: number, prefix = 'q'): Promise<Answer> {
  return stack.server.client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${prefix}${n}`, email: `${prefix}${n}@example.org` } });
}

async function joinAll(course: string, count: number, prefix = 'q'): Promise<Joined[]> {
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => join(course, i, prefix)));
  assert.deepEqual(countBy(answers, (a) => a.status), { 201: count });
  return answers.map((a, i) => ({ id: a.body.id, email: `${prefix}${i}@example.org`, queueToken: a.body.queueToken }));
}

function place(joined: Joined): Promise<Answer> {
  return stack.server.client.request('GET', `/queue/${joined.id}`, { token: joined.queueToken });
}

/** Opens the course now (its places joined while opensAt was ahead). */
async function open(course: string): Promise<void> {
  const answer = await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: past(1_000) });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

async function ranks(course: string): Promise<Map<string, number | null>> {
  const rows = await stack.db.sql<{ id: string; rank: string | null }[]>`SELECT id, rank::text FROM queue_places WHERE course_id = ${course}`;
  return new Map(rows.map((row) => [row.id, row.rank === null ? null : Number(row.rank)]));
}

async function statuses(course: string): Promise<Record<string, number>> {
  const rows = await stack.db.sql<{ status: string }[]>`SELECT status::text FROM queue_places WHERE course_id = ${course}`;
  return countBy(rows, (row) => row.status);
}

function register(course: string, joined: { email: string }, admission?: string): Promise<Answer> {
  return stack.server.client.request('POST', '/register', { body: { name: 'A Student', email: joined.email, course, ...(admission === undefined ? {} : { admission }) } });
}

describe('joining', () => {
  test('hundreds of joins at once: one place per email, the second join of an email 200 showing nothing stored', async () => {
    const course = await queuedCourse({ capacity: 10, opensAt: future(3_600_000) });
    const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => join(course, i % 250)));
    assert.deepEqual(countBy(answers, (a) => a.status), { 201: 250, 200: 150 });
    const created = answers.filter((a) => a.status === 201).map((a) => a.body);
    assert.equal(new Set(created.map((p) => p.id)).size, 250);
    for (const body of created) {
      assert.equal(body.status, 'waiting');
      assert.equal(body.position, null, 'no position before the places are ordered');
      assert.equal(typeof body.queueToken, 'string');
    }
    for (const answer of answers.filter((a) => a.status === 200)) assert.deepEqual(Object.keys(answer.body).sort(), ['alreadyQueued', 'course', 'email']);
    const [stored] = await stack.db.sql<{ n: number; emails: number }[]>`SELECT count(*)::int AS n, count(DISTINCT email_key)::int AS emails FROM queue_places WHERE course_id = ${course}`;
    assert.deepEqual({ ...stored }, { n: 250, emails: 250 });
    await assertInvariants(stack.db.sql);
  });

  test('a course without a queue, before joinFrom, after closesAt, bad fields: each a problem, nothing changed', async () => {
    const plain = await newCourse(stack.server.client, { capacity: 5 });
    const early = await newCourse(stack.server.client, { capacity: 5, queue: { order: 'arrival', joinFrom: future(3_600_000) } });
    const closed = await newCourse(stack.server.client, { capacity: 5, opensAt: past(7_200_000), closesAt: past(3_600_000), queue: { order: 'arrival' } });
    const open = await queuedCourse({ capacity: 5, opensAt: future(3_600_000) });
    const before = await readStoredState(stack.db.sql);
    assertProblem(await join(plain, 1), 409, 'conflict', 'a course without a queue');
    assertProblem(await join(early, 1), 409, 'registration-closed', 'before joinFrom');
    assertProblem(await join(closed, 1), 409, 'registration-closed', 'after closesAt');
    for (const body of [{ name: 'x' }, { name: '', email: 'a@example.org' }, { name: 'x', email: 'not-an-email' }, { name: 'x', email: 'a@example.org', extra: 1 }]) {
      assertProblem(await stack.server.client.request('POST', `/courses/${open}/queue`, { body }), 400, 'validation', JSON.stringify(body));
    }
    assertProblem(await join('no-such-course', 1), 404, 'not-found', 'an unknown course');
    assertProblem(await stack.server.client.admin('POST', '/courses', { id: `v-${randomBytes(4).toString('hex')}`, title: 'V', capacity: 1, closesAt: future(1_000), queue: { order: 'random', joinFrom: future(2_000) } }), 400, 'validation', 'joinFrom after closesAt');
    assert.deepEqual(await readStoredState(stack.db.sql), before);
  });

  test('a place is seen and left with its own queue token or the admin token only', async () => {
    const course = await queuedCourse({ capacity: 5, opensAt: future(3_600_000) });
    const [a, b] = await joinAll(course, 2, 'tok');
    assert.equal((await place(a!)).status, 200);
    assertProblem(await stack.server.client.request('GET', `/queue/${a!.id}`, { token: b!.queueToken }), 401, 'unauthorized', 'another place\'s token');
    assertProblem(await stack.server.client.request('GET', `/queue/${a!.id}`), 401, 'unauthorized', 'no token');
    assertProblem(await stack.server.client.request('GET', '/queue/00000000-0000-4000-8000-000000000000', { token: a!.queueToken }), 404, 'not-found', 'an unknown place');
    assertProblem(await stack.server.client.request('DELETE', `/queue/${a!.id}`, { token: b!.queueToken }), 401, 'unauthorized', 'leaving with another place\'s token');
    assert.equal((await stack.server.client.admin('GET', `/queue/${b!.id}`)).body.status, 'waiting');
    for (let i = 0; i < 2; i++) {
      const left = await stack.server.client.request('DELETE', `/queue/${a!.id}`, { token: a!.queueToken });
      assert.equal(left.status, 200);
      assert.equal(left.body.status, 'left');
    }
  });
});

describe('a course\'s queue settings', () => {
  test('PATCH sets and removes a queue; its order is fixed once the places are ordered, and a queue with places stays', async () => {
    const course = await newCourse(stack.server.client, { capacity: 3, opensAt: future(3_600_000) });
    const set = await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: { order: 'arrival', admissionSeconds: 60 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual({ ...set.body.queue, seedSha256: null }, { order: 'arrival', joinFrom: null, admissionSeconds: 60, verifyEmail: false, seedSha256: null, seed: null });
    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: null })).body.queue, null, 'removed while nobody joined');
    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: { order: 'random' } })).status, 200);
    await joinAll(course, 2, 'set');
    assertProblem(await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: null }), 409, 'conflict', 'removing a queue with places');
    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: { order: 'arrival' } })).status, 200, 'the order may change until the places are ordered');
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    assertProblem(await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: { order: 'random' } }), 409, 'conflict', 'changing the order once ordered');
    assertProblem(await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: { order: 'lottery' } }), 400, 'validation', 'an unknown order');
    const kept = await stack.server.client.admin('PATCH', `/courses/${course}`, { queue: { order: 'arrival', admissionSeconds: 120 } });
    assert.equal(kept.body.queue.admissionSeconds, 120);
  });
});

describe('ordering and admission', () => {
  test('concurrent ticks and reads order the places once, by the published seed, and admit by rank, each place once', async () => {
    const course = await queuedCourse({ capacity: 30, waitlistCapacity: 10, opensAt: future(3_600_000) });
    const before = (await stack.server.client.request('GET', `/courses/${course}`)).body.queue;
    assert.match(before.seedSha256, /^[0-9a-f]{64}$/);
    assert.equal(before.seed, null, 'the seed is not shown before the places are ordered');
    const joined = await joinAll(course, 120, 'ord');
    await open(course);

    // Two pools (as two instances would), ticking and reading at once.
    const other = postgres(stack.db.url, { max: 8, onnotice: () => {} });
    try {
      const [ticks, reads] = await Promise.all([
        Promise.all(Array.from({ length: 8 }, (_, i) => admitFromQueue(i % 2 === 0 ? stack.db.sql : other, course))),
        Promise.all(joined.slice(0, 20).map(async (j) => (await place(j)).status)),
      ]);
      assert.ok(reads.every((status) => status === 200));
      const admittedByTicks = ticks.reduce((sum, tick) => sum + ('admitted' in tick ? tick.admitted : 0), 0);
      assert.equal(admittedByTicks, 40, 'the ticks together admitted the seats and waitlist places, no place twice');
    } finally {
      await other.end();
    }

    const shown = (await stack.server.client.request('GET', `/courses/${course}`)).body.queue;
    assert.equal(createHash('sha256').update(Buffer.from(shown.seed, 'hex')).digest('hex'), before.seedSha256, 'the seed shown is the one committed to');
    const stored = await ranks(course);
    const expected = [...joined].sort((x, y) => Buffer.compare(
      createHash('sha256').update(Buffer.concat([Buffer.from(shown.seed, 'hex'), Buffer.from(x.id)])).digest(),
      createHash('sha256').update(Buffer.concat([Buffer.from(shown.seed, 'hex'), Buffer.from(y.id)])).digest()));
    assert.deepEqual(expected.map((j) => stored.get(j.id)), expected.map((_, i) => i + 1), 'ranks are the order recomputed from the seed');

    // The 40 admitted are ranks 1..40; the next waiting place is position 1.
    const admitted = await stack.db.sql<{ r: number }[]>`SELECT rank::int AS r FROM queue_places WHERE course_id = ${course} AND status = 'admitted' ORDER BY rank`;
    assert.deepEqual(admitted.map((row) => row.r), Array.from({ length: 40 }, (_, i) => i + 1));
    const next = expected[40]!;
    const nextPlace = (await place(next)).body;
    assert.deepEqual({ status: nextPlace.status, position: nextPlace.position, ahead: nextPlace.ahead }, { status: 'waiting', position: 1, ahead: 0 });
    assert.ok(nextPlace.estimatedWaitSeconds > 0, 'an estimate from the admissions of the last minute');
    const last = (await place(expected[119]!)).body;
    assert.equal(last.position, 80);
    const head = (await place(expected[0]!)).body;
    assert.equal(head.status, 'admitted');
    assert.equal(typeof head.admission, 'string');
    assert.ok(Date.parse(head.admittedUntil) > Date.now());
    assert.equal((await stack.server.client.admin('GET', `/queue/${expected[0]!.id}`)).body.admission, null, 'the admin has no queue token, so sees no admission');

    // A later joiner queues behind everyone ranked.
    const late = (await join(course, 999, 'ord')).body;
    assert.equal(late.position, 81);
    await assertInvariants(stack.db.sql);
  });

  test('the job worker\'s ticker admits by itself, within the seats', async () => {
    const course = await queuedCourse({ capacity: 3, opensAt: future(3_600_000), order: 'arrival' });
    const joined: Joined[] = [];
    for (let i = 0; i < 5; i++) joined.push(...(await joinAll(course, 1, `ticker${i}-`)));
    await open(course);
    const dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-test-housekeeping-'));
    const errors: unknown[] = [];
    const stop = startHousekeeping(stack.db.sql, (error) => errors.push(error), { retentionDays: 180, dataDir });
    try {
      const shown = await eventually(() => Promise.all(joined.map(async (j) => (await place(j)).body.status)), (all) => all.filter((status) => status === 'admitted').length === 3);
      assert.deepEqual(shown, ['admitted', 'admitted', 'admitted', 'waiting', 'waiting']);
    } finally {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    assert.deepEqual(errors, []);
  });

  test('the ordering waits for a join in flight and ranks it', async () => {
    const course = await queuedCourse({ capacity: 5, opensAt: future(3_600_000) });
    const other = postgres(stack.db.url, { max: 1, onnotice: () => {} });
    try {
      let joinedInside!: () => void;
      const inside = new Promise<void>((resolve) => { joinedInside = resolve; });
      let commit!: () => void;
      const committing = new Promise<void>((resolve) => { commit = resolve; });
      // A join before opensAt whose transaction has not committed yet.
      const inFlight = other.begin(async (tx) => {
        await tx`SELECT registrar_queue_join(${course}, 'In Flight', 'inflight@example.org', 'inflight@example.org', ${randomBytes(32)}, ${randomBytes(32)})`;
        joinedInside();
        await committing;
      });
      await inside;
      await open(course);
      const tick = admitFromQueue(stack.db.sql, course);
      await eventually(async () => (await stack.db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%registrar_admit%'`)[0]!.n, (n) => n === 1);
      commit();
      await inFlight;
      const outcome = await tick;
      assert.deepEqual(outcome.outcome === 'admitting' && outcome.admitted, 1);
      const [row] = await stack.db.sql<{ rank: number; status: string }[]>`SELECT rank::int, status::text FROM queue_places WHERE course_id = ${course}`;
      assert.deepEqual({ ...row }, { rank: 1, status: 'admitted' }, 'the join that was in flight is ranked and admitted');
    } finally {
      await other.end();
    }
  });

  test('a join that began before opensAt and meets the places ordered is refused with 40001, to run again', async () => {
    const opensAt = Date.now() + 1_500;
    const course = await queuedCourse({ capacity: 5, opensAt: new Date(opensAt).toISOString() });
    const other = postgres(stack.db.url, { max: 1, onnotice: () => {} });
    try {
      const late = other.begin(async (tx) => {
        await tx`SELECT 1`; // the transaction's now(): before opensAt
        await new Promise((resolve) => setTimeout(resolve, opensAt - Date.now() + 200));
        await admitFromQueue(stack.db.sql, course); // orders the places, after opensAt
        await tx`SELECT registrar_queue_join(${course}, 'Late', 'late@example.org', 'late@example.org', ${randomBytes(32)}, ${randomBytes(32)})`;
      });
      await assert.rejects(late, (error: { code?: string }) => error.code === '40001');
      const [stored] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM queue_places WHERE course_id = ${course}`;
      assert.equal(stored?.n, 0);
      // Run again (as joinQueue does), it starts after opensAt and ranks behind.
      const again = await join(course, 1, 'late-again');
      assert.equal(again.status, 201);
      assert.equal(again.body.position, 1);
    } finally {
      await other.end();
    }
  });

  test('arrival order ranks by join order', async () => {
    const course = await queuedCourse({ capacity: 2, opensAt: future(3_600_000), order: 'arrival' });
    const joined: Joined[] = [];
    for (let i = 0; i < 5; i++) joined.push(...(await joinAll(course, 1, `arr${i}-`)));
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const stored = await ranks(course);
    assert.deepEqual(joined.map((j) => stored.get(j.id)), [1, 2, 3, 4, 5]);
    assert.equal((await stack.server.client.request('GET', `/courses/${course}`)).body.queue.seed, null, 'no seed for arrival order');
  });

  test('tickers of every pool at once, round after round: each place admitted once, in rank order, never more than the seats', async () => {
    const course = await queuedCourse({ capacity: 150, waitlistCapacity: 0, opensAt: future(3_600_000) });
    const joined = await joinAll(course, 200, 'tick');
    await open(course);
    const other = postgres(stack.db.url, { max: 4, onnotice: () => {} });
    try {
      for (let round = 0; round < 4; round++) {
        await Promise.all([admitFromQueues(stack.db.sql), admitFromQueues(other), admitFromQueues(stack.db.sql)]);
        // The admitted register, so the next round has room under the bound.
        const admitted = await stack.db.sql<{ email: string }[]>`SELECT email FROM queue_places WHERE course_id = ${course} AND status = 'admitted'`;
        const byEmail = new Map(joined.map((j) => [j.email, j]));
        await Promise.all(admitted.map(async (row) => {
          const j = byEmail.get(row.email)!;
          const answer = await register(course, j, (await place(j)).body.admission);
          assert.equal(answer.status, 201, JSON.stringify(answer.body));
        }));
      }
    } finally {
      await other.end();
    }
    assert.deepEqual(await statuses(course), { registered: 150, 'sold-out': 50 }, 'seats taken by the first 150 ranks; then the rest sold out at once');
    await assertInvariants(stack.db.sql);
  });
});

describe('the estimate', () => {
  // A pacing that ramps up over 20 s, holds 100/s, then doubles at 120 s (registrations
  // committing faster), ticked every 0.5 s on a clock of its own: each tick's rate from the
  // samples of the minute before it, as registrar_admit keeps them, and each reading (the wait of
  // a place m ahead of the pointer, in whole seconds as a place row gives it) against the tick
  // at which the schedule admits it.
  test('position over the recency-weighted rate of the last minute is within 20% of the admission time once the pacing changes', async () => {
    const tickMs = 500;
    const perTick = (k: number) => (k < 40 ? 5 + Math.floor((45 * k) / 40) : k < 240 ? 50 : 100);
    const ticks = 480;
    const start = Date.parse('2026-12-01T10:00:00Z');
    const admittedBy: number[] = [];
    for (let k = 0, total = 0; k < ticks; k++) admittedBy.push((total += perTick(k)));
    const rates: number[] = [];
    const minuteRates: number[] = [];
    for (let k = 0; k < ticks; k++) {
      const kept = Array.from({ length: k + 1 }, (_, i) => i).filter((i) => (k - i) * tickMs < 60_000);
      const at = kept.map((i) => new Date(start + i * tickMs).toISOString());
      const [row] = await stack.db.sql<{ rate: number }[]>`SELECT registrar_admission_rate(${at}::timestamptz[], ${kept.map(perTick)}::int[], ${at.at(-1)!}::timestamptz) AS rate`;
      rates.push(row!.rate);
      // The minute's plain average, for comparison: every admission over the time since the first sample.
      minuteRates.push(kept.reduce((sum, i) => sum + perTick(i), 0) / Math.max(((k - kept[0]!) * tickMs) / 1000, 1));
    }
    // Readings from tick `from` to `to` of places 1,234, 3,456 and 6,789 ahead (waits of 6 s to a
    // minute: a wait of a second or two is all rounding); those the schedule never admits are left out.
    const medianError = (rateAt: (k: number) => number, from: number, to: number) => {
      const relative: number[] = [];
      for (let k = from; k < to; k++) {
        for (const ahead of [1_234, 3_456, 6_789]) {
          const admittedAt = admittedBy.findIndex((n, j) => j > k && n >= admittedBy[k]! + ahead);
          if (admittedAt < 0) continue;
          const actual = ((admittedAt - k) * tickMs) / 1000;
          relative.push(Math.abs(Math.ceil(ahead / rateAt(k)) - actual) / actual);
        }
      }
      assert.ok(relative.length > 300, `${relative.length} readings`);
      return relative.sort((x, y) => x - y)[Math.floor(relative.length / 2)]!;
    };
    assert.ok(Math.abs(rates[230]! - 100) < 1, `a steady 100/s reads as itself (${rates[230]})`);
    const afterFirstMinute = medianError((k) => rates[k]!, 120, ticks);
    assert.ok(afterFirstMinute < 0.2, `median error after the first minute ${afterFirstMinute}`);
    // In the minute after the step the minute's plain average is the old rate for the most part.
    const afterStep = medianError((k) => rates[k]!, 240, 360);
    const afterStepPlain = medianError((k) => minuteRates[k]!, 240, 360);
    assert.ok(afterStep < 0.2, `median error in the minute after the step ${afterStep}`);
    assert.ok(afterStepPlain > 0.2, `the plain average of the minute trails the step: ${afterStepPlain}`);
  });

  test('a tick stores the rate of its samples, and a waiting place reads position over it', async () => {
    const course = await queuedCourse({ capacity: 20, waitlistCapacity: 0, opensAt: future(3_600_000), order: 'arrival' });
    const joined = await joinAll(course, 30, 'eta');
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    await admitFromQueue(stack.db.sql, course);
    const [state] = await stack.db.sql<{ stored: number; computed: number }[]>`
      SELECT admission_rate AS stored, registrar_admission_rate(sample_at, sample_admitted, sample_at[array_upper(sample_at, 1)]) AS computed
      FROM queue_states WHERE course_id = ${course}`;
    assert.equal(state!.stored, state!.computed);
    assert.ok(state!.stored > 0, 'the 20 admitted at the first tick count over its second');
    const last = (await place(joined[29]!)).body;
    assert.deepEqual({ position: last.position, estimatedWaitSeconds: last.estimatedWaitSeconds }, { position: 10, estimatedWaitSeconds: Math.ceil(10 / state!.stored) });
  });
});


describe('registering with an admission', () => {
  test('a rush of admitted students among bots without or with forged admissions: only the admitted register, no 5xx', async () => {
    const course = await queuedCourse({ capacity: 30, waitlistCapacity: 10, opensAt: future(3_600_000) });
    const joined = await joinAll(course, 120, 'rush');
    const elsewhere = await queuedCourse({ capacity: 5, opensAt: future(3_600_000) });
    const [foreign] = await joinAll(elsewhere, 1, 'foreign');
    await open(course);
    await open(elsewhere);
    await admitFromQueue(stack.db.sql, course);
    await admitFromQueue(stack.db.sql, elsewhere);
    const views = await Promise.all(joined.map(async (j) => ({ ...j, ...(await place(j)).body })));
    const admitted = views.filter((v) => v.status === 'admitted');
    const waiting = views.filter((v) => v.status === 'waiting');
    assert.equal(admitted.length, 40);
    const foreignAdmission = (await place(foreign!)).body.admission as string;

    let fastRefusals = 0;
    observeFastRefusals(stack.db.sql, () => fastRefusals++);
    const bots = [
      // Without an admission: waiting students and strangers.
      ...waiting.map((w) => () => register(course, w)),
      ...Array.from({ length: 200 }, (_, i) => () => register(course, { email: `bot${i}@example.org` })),
      // Forged: random tokens, someone else's admission, another course's.
      ...Array.from({ length: 100 }, (_, i) => () => register(course, { email: `forger${i}@example.org` }, randomBytes(32).toString('base64url'))),
      ...admitted.slice(0, 20).map((a, i) => () => register(course, waiting[i]!, a.admission)),
      () => register(course, { email: foreign!.email }, foreignAdmission),
    ];
    const students = admitted.map((a) => () => register(course, a, a.admission));
    const answers = await Promise.all([...bots, ...students].sort(() => Math.random() - 0.5).map((send) => send()));
    assert.equal(answers.filter((a) => a.status >= 500).length, 0);
    // A bot that comes once the seats are gone learns that instead (course-full).
    const counts = countBy(answers, (a) => a.status);
    assert.equal(counts[201], 40);
    assert.equal((counts[403] ?? 0) + (counts[409] ?? 0), bots.length, JSON.stringify(counts));
    for (const answer of answers.filter((a) => a.status === 403)) assert.equal(answer.body.type, '/problems/not-admitted');
    for (const answer of answers.filter((a) => a.status === 409)) assert.equal(answer.body.type, '/problems/course-full');
    const created = answers.filter((a) => a.status === 201).map((a) => a.body);
    assert.deepEqual(countBy(created, (r) => r.status), { enrolled: 30, waitlisted: 10 });
    assert.deepEqual(new Set(created.map((r) => r.email)), new Set(admitted.map((a) => a.email)));
    assert.deepEqual((await statuses(course)).registered, 40);

    // The course is known to be queued now: without an admission, refused from memory.
    const before = fastRefusals;
    const late = await Promise.all(Array.from({ length: 50 }, (_, i) => register(course, { email: `late${i}@example.org` })));
    for (const answer of late) assertProblem(answer, 403, 'not-admitted', 'a registration without an admission');
    assert.equal(fastRefusals - before, 50, 'each refused from memory, without a transaction');
    await assertInvariants(stack.db.sql);
  });

  test('an admission registers once: used again after a cancel it is refused, nothing changed', async () => {
    const course = await queuedCourse({ capacity: 5, opensAt: future(3_600_000) });
    const [a] = await joinAll(course, 1, 'once');
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const admission = (await place(a!)).body.admission as string;
    const first = await register(course, a!, admission);
    assert.equal(first.status, 201);
    assert.equal((await register(course, a!, admission)).status, 200, 'a retry finds the registration');
    assert.equal((await place(a!)).body.status, 'registered');
    const cancelled = await stack.server.client.request('DELETE', `/registrations/${first.body.id}`, { token: first.body.manageToken });
    assert.equal(cancelled.status, 200);
    const before = await readStoredState(stack.db.sql);
    assertProblem(await register(course, a!, admission), 403, 'not-admitted', 'a used admission');
    assert.deepEqual(await readStoredState(stack.db.sql), before);
  });

  test('without an admission, a registered student is refused like anyone, from memory or from the database: no reminder, nothing shown', async () => {
    const course = await queuedCourse({ capacity: 5, opensAt: future(3_600_000) });
    const [a] = await joinAll(course, 1, 'probe');
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    assert.equal((await register(course, a!, (await place(a!)).body.admission as string)).status, 201);
    const before = await readStoredState(stack.db.sql);
    assertProblem(await register(course, a!), 403, 'not-admitted', 'over HTTP');
    // A pool of its own knows nothing of the course yet: the refusal comes from the batch in SQL.
    const cold = postgres(stack.db.url, { max: 2, onnotice: () => {} });
    try {
      await assert.rejects(registerStudent(cold, { name: 'A Student', email: a!.email, course }), (error: unknown) => error instanceof DomainError && error.code === 'not-admitted');
    } finally {
      await cold.end({ timeout: 5 });
    }
    assert.deepEqual(await readStoredState(stack.db.sql), before);
    const [row] = await stack.db.sql<{ reminded: boolean }[]>`SELECT reminded_at IS NOT NULL AS reminded FROM registrations WHERE course_id = ${course}`;
    assert.equal(row!.reminded, false, 'no reminder went to the registered address');
  });

  test('with a forged or another student\'s admission, a registered student is refused too, also once the course is known full; with their own, a retry finds the registration', async () => {
    const course = await queuedCourse({ capacity: 2, opensAt: future(3_600_000), order: 'arrival' });
    const joined: Joined[] = [];
    for (let i = 0; i < 2; i++) joined.push(...(await joinAll(course, 1, `forge${i}-`)));
    const [a, b] = joined as [Joined, Joined];
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const own = (await place(a)).body.admission as string;
    const others = (await place(b)).body.admission as string;
    assert.equal((await register(course, a, own)).status, 201);
    // One seat fewer: b's registration finds the course full, and this worker remembers it full and queued.
    assert.equal((await stack.server.client.admin('PATCH', `/courses/${course}`, { capacity: 1 })).status, 200);
    assertProblem(await register(course, b, others), 409, 'course-full', 'b, admitted into no seat');
    const cold = postgres(stack.db.url, { max: 2, onnotice: () => {} });
    try {
      const before = await readStoredState(stack.db.sql);
      for (const [what, admission] of [['forged', randomBytes(32).toString('base64url')], ['another student\'s', others], ['no', undefined]] as const) {
        assertProblem(await register(course, a, admission), 403, 'not-admitted', `${what} admission, the course known full`);
        await assert.rejects(registerStudent(cold, { name: 'A Student', email: a.email, course, ...(admission === undefined ? {} : { admission }) }),
          (error: unknown) => error instanceof DomainError && error.code === 'not-admitted', `${what} admission, from the database`);
      }
      assert.deepEqual(await readStoredState(stack.db.sql), before);
      const [row] = await stack.db.sql<{ reminded: boolean }[]>`SELECT reminded_at IS NOT NULL AS reminded FROM registrations WHERE course_id = ${course}`;
      assert.equal(row!.reminded, false, 'no reminder went to the registered address');
    } finally {
      await cold.end({ timeout: 5 });
    }
    assert.equal((await register(course, a, own)).status, 200, 'a retry with the student\'s own admission');
  });

  test('an expired admission passes the place on; when the seats are gone every waiting place is sold out at once', async () => {
    const course = await queuedCourse({ capacity: 1, opensAt: future(3_600_000), order: 'arrival', admissionSeconds: 1 });
    const joined: Joined[] = [];
    for (let i = 0; i < 4; i++) joined.push(...(await joinAll(course, 1, `exp${i}-`)));
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const firstAdmission = (await place(joined[0]!)).body.admission as string;
    assert.equal((await place(joined[1]!)).body.status, 'waiting', 'one seat: one admission');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const lapsed = (await place(joined[0]!)).body;
    assert.deepEqual({ status: lapsed.status, admission: lapsed.admission }, { status: 'expired', admission: null }, 'past its time, before any tick: expired');
    assertProblem(await register(course, joined[0]!, firstAdmission), 403, 'not-admitted', 'an expired admission');
    const tick = await admitFromQueue(stack.db.sql, course);
    assert.deepEqual(tick.outcome === 'admitting' && { expired: tick.expired, admitted: tick.admitted }, { expired: 1, admitted: 1 });
    assert.equal((await place(joined[0]!)).body.status, 'expired');
    const second = await place(joined[1]!);
    assert.equal(second.body.status, 'admitted');
    assert.equal((await register(course, joined[1]!, second.body.admission)).status, 201);
    const soldOut = await admitFromQueue(stack.db.sql, course);
    assert.deepEqual(soldOut.outcome === 'sold-out' && soldOut.soldOut, 2);
    assert.deepEqual(await Promise.all(joined.map(async (j) => (await place(j)).body.status)), ['expired', 'registered', 'sold-out', 'sold-out']);
    assertProblem(await join(course, 50, 'exp-late'), 409, 'course-full', 'joining a sold-out course');
    await assertInvariants(stack.db.sql);
  });

  test('tokens out of place: a queue token as an admission, an admission as a queue token, another place\'s token, an expired admission: each a problem, nothing stored changes', async () => {
    const course = await queuedCourse({ capacity: 2, opensAt: future(3_600_000), order: 'arrival', admissionSeconds: 1 });
    const joined: Joined[] = [];
    for (let i = 0; i < 2; i++) joined.push(...(await joinAll(course, 1, `misplaced${i}-`)));
    const [a, b] = joined as [Joined, Joined];
    await open(course);
    await admitFromQueue(stack.db.sql, course);
    const admission = (await place(a)).body.admission as string;
    assert.equal(typeof admission, 'string');
    const before = await readStoredState(stack.db.sql);
    assertProblem(await register(course, a, a.queueToken), 403, 'not-admitted', 'the queue token sent as the admission');
    assertProblem(await stack.server.client.request('GET', `/queue/${a.id}`, { token: admission }), 401, 'unauthorized', 'the admission sent as a queue token');
    assertProblem(await stack.server.client.request('DELETE', `/queue/${a.id}`, { token: admission }), 401, 'unauthorized', 'leaving with the admission');
    assertProblem(await stack.server.client.request('POST', `/queue/${a.id}/verify`, { token: b.queueToken }), 401, 'unauthorized', 'verifying with another place\'s token');
    assertProblem(await stack.server.client.request('DELETE', `/queue/${a.id}`, { token: b.queueToken }), 401, 'unauthorized', 'leaving with another place\'s token');
    assert.deepEqual(await readStoredState(stack.db.sql), before);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assertProblem(await register(course, a, admission), 403, 'not-admitted', 'an expired admission');
    assert.deepEqual(await readStoredState(stack.db.sql), before, 'the expired admission registered nothing and changed nothing');
    assert.equal((await place(a)).body.status, 'expired');
  });

  test('a course without a queue registers as before, with or without an admission field', async () => {
    const course = await newCourse(stack.server.client, { capacity: 2 });
    assert.equal((await register(course, { email: 'plain1@example.org' })).status, 201);
    assert.equal((await register(course, { email: 'plain2@example.org' }, 'whatever')).status, 201);
  });
});

describe('joining is rate limited per client', () => {
  const limited = useStack({ server: { rateLimitPerMinute: 3 } });

  test('past the limit a client\'s joins get 429 with Retry-After, and registering keeps its own budget', async () => {
    const course = await newCourse(limited.server.client, { capacity: 5, opensAt: future(3_600_000), queue: { order: 'random' } });
    const answers = await inOneWindow(10_000, async () => {
      const joins: Answer[] = [];
      for (let i = 0; i < 5; i++) {
        joins.push(await limited.server.client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${i}`, email: `limited${i}@example.org` } }));
      }
      const registering = await limited.server.client.register({ name: 'Ada', email: 'limited-ada@example.org', course });
      return { joins, registering };
    });
    assert.deepEqual(answers.joins.map((a) => a.status), [201, 201, 201, 429, 429]);
    assertProblem(answers.joins[3]!, 429, 'rate-limited', 'the fourth join');
    assert.ok(Number(answers.joins[3]!.headers.get('retry-after')) > 0);
    assert.equal(answers.registering.status, 409, 'registering is not refused by the joins\' budget (the course is not open)');
  });
});
