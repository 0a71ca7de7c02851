// The waiting room over real HTTP against a real PostgreSQL: joins at once, the queue settings,
// the ordering done once under concurrent ticks, admission in rank order by several tickers at
// once, and the estimate; SPEC invariant 8 checked on what is stored. Registering with an
// admission: waiting-room-admission.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { configureFullCourses } from '../../src/domain/full-courses.ts';
import { admitFromQueues } from '../../src/domain/queue.service.ts';
import { startHousekeeping } from '../../src/jobs/housekeeping.ts';
import { newCourse } from '../support/factories.ts';
import { assertProblem } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy } from '../support/rush.ts';
import { eventually } from '../support/eventually.ts';
import { useStack } from '../support/stack.ts';
import { readStoredState } from '../support/stored-state.ts';
import { future, type Joined, past, queuedCourseHelpers } from '../support/queued-course.ts';

// The database's "queued" and "full" are trusted for a minute here, so that the refusals made
// from memory can be counted without depending on how fast the machine is.
const stack = useStack({ poolSize: 30 }, (stack) => configureFullCourses(stack.db.sql, { recheckMs: 60_000 }));

const { queuedCourse, join, joinAll, place, open, ranks, statuses, register } = queuedCourseHelpers(stack);

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
