// Registering for a queued course over real HTTP against a real PostgreSQL: a rush of admitted
// students among requests without or with forged admissions, an admission used once, refusals
// that show nothing stored, expiry and sold-out, tokens out of place, and the joins' rate limit.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import { admitFromQueue, liveAdmissionsStatement } from '../../src/db/queries/queue.queries.ts';
import { hashToken } from '../../src/security/tokens.ts';
import { configureFullCourses, observeFastRefusals } from '../../src/domain/full-courses.ts';
import { DomainError } from '../../src/domain/domain-error.ts';
import { registerStudent } from '../../src/domain/registration.service.ts';
import { newCourse } from '../support/factories.ts';
import { type Answer, assertProblem } from '../support/http.ts';
import { assertInvariants } from '../support/invariants.ts';
import { countBy } from '../support/rush.ts';
import { inOneWindow } from '../support/rate-limit-window.ts';
import { useStack } from '../support/stack.ts';
import { readStoredState } from '../support/stored-state.ts';
import { future, type Joined, past, queuedCourseHelpers } from '../support/queued-course.ts';

// The database's "queued" and "full" are trusted for a minute here, so that the refusals made
// from memory can be counted without depending on how fast the machine is.
const stack = useStack({ poolSize: 30 }, (stack) => configureFullCourses(stack.db.sql, { recheckMs: 60_000 }));

/** A node of EXPLAIN (FORMAT JSON): the fields read here. */
type PlanNode = { 'Relation Name'?: string; 'Actual Loops': number; Plans?: PlanNode[] };

const { queuedCourse, join, joinAll, place, open, statuses, register } = queuedCourseHelpers(stack);

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

  test('the rule of a live admission (registrar_admission_is_live) is inlined where it is asked: a filter on the columns, no function call', async () => {
    const planOf = async (predicate: string) => {
      const [plan] = await stack.db.sql.unsafe<{ 'QUERY PLAN': unknown }[]>(`
        EXPLAIN (FORMAT JSON, VERBOSE) SELECT count(*) FROM queue_places q WHERE ${predicate}(q.status, q.admitted_until)`);
      return JSON.stringify(plan!['QUERY PLAN']);
    };
    const plan = await planOf('registrar_admission_is_live');
    assert.doesNotMatch(plan, /registrar_admission_is_live/, plan);
    assert.match(plan, /admitted_until > now\(\)/, plan);
    // The control: a SECURITY DEFINER copy cannot be inlined, and its call shows in the plan.
    await stack.db.sql.unsafe(`CREATE FUNCTION definer_live(p_status queue_place_status, p_admitted_until timestamptz) RETURNS boolean
      LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT registrar_admission_is_live(p_status, p_admitted_until) $$`);
    assert.match(await planOf('definer_live'), /definer_live/);
    await stack.db.sql`DROP FUNCTION definer_live(queue_place_status, timestamptz)`;
  });

  test('the admission probe looks each admission up once, however many places are admitted', async () => {
    const course = await queuedCourse({ capacity: 300, opensAt: future(3_600_000) });
    const joined = await joinAll(course, 120, 'probe');
    await open(course);
    // Statistics taken before the admissions, as autovacuum's ANALYZE may leave them during a
    // rush: the planner expects next to no admitted places.
    await stack.db.sql`ANALYZE queue_places, queue_tokens`;
    await admitFromQueue(stack.db.sql, course);
    const admissions = (await Promise.all(joined.map(place))).map((a) => a.body.admission).filter((a): a is string => typeof a === 'string');
    assert.ok(admissions.length >= 40, `${admissions.length} admitted`);
    const forged = Array.from({ length: 1019 }, () => randomBytes(32).toString('base64url'));
    const probes = [...admissions.slice(0, 5), ...forged].map((a) => ({ courseId: course, admissionHash: hashToken(a) }));
    assert.deepEqual((await liveAdmissionsStatement(stack.db.sql, probes)).map((r) => r.n).sort(), ['1', '2', '3', '4', '5']);
    const [explained] = await stack.db.sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }[]>`EXPLAIN (ANALYZE, FORMAT JSON) ${liveAdmissionsStatement(stack.db.sql, probes)}`;
    const tokenLookups = (node: PlanNode): number =>
      (node['Relation Name'] === 'queue_tokens' ? node['Actual Loops'] : 0) + (node.Plans ?? []).reduce((sum, child) => sum + tokenLookups(child), 0);
    const plan = explained!['QUERY PLAN'][0].Plan;
    assert.ok(tokenLookups(plan) <= probes.length, `${tokenLookups(plan)} lookups of queue_tokens for ${probes.length} probes and ${admissions.length} admitted places: ${JSON.stringify(plan)}`);
  });

  test('a course without a queue registers as before, with or without an admission field', async () => {
    const course = await newCourse(stack.server.client, { capacity: 2 });
    assert.equal((await register(course, { email: 'plain1@example.org' })).status, 201);
    assert.equal((await register(course, { email: 'plain2@example.org' }, 'whatever')).status, 201);
  });
});

describe('not-admitted answers are held (NOT_ADMITTED_HOLD_MS)', () => {
  const HOLD_MS = 2_000;
  const holding = useStack({ server: { notAdmittedHoldMs: HOLD_MS } });
  const helpers = queuedCourseHelpers(holding);

  test('bots without or with forged admissions wait for their 403; the admitted students register meanwhile', async () => {
    const course = await helpers.queuedCourse({ capacity: 20, opensAt: future(3_600_000) });
    const joined = await helpers.joinAll(course, 40, 'held');
    await helpers.open(course);
    await admitFromQueue(holding.db.sql, course);
    const views = await Promise.all(joined.map(async (j) => ({ ...j, ...(await helpers.place(j)).body })));
    const admitted = views.filter((v) => v.status === 'admitted');
    assert.equal(admitted.length, 20);
    const countRegistrations = async () => Number((await holding.db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM registrations WHERE course_id = ${course}`)[0]!.n);
    assert.equal(await countRegistrations(), 0);
    const timed = async (send: () => Promise<Answer>) => {
      const startedAt = performance.now();
      const answer = await send();
      return { answer, startedAt, endedAt: performance.now() };
    };
    const bots = [
      ...Array.from({ length: 50 }, (_, i) => () => helpers.register(course, { email: `held-bot${i}@example.org` })),
      ...Array.from({ length: 50 }, (_, i) => () => helpers.register(course, { email: `held-forger${i}@example.org` }, randomBytes(32).toString('base64url'))),
    ].map(timed);
    // Sent after the bots: their refusals are decided first, and still written last.
    const students = admitted.map((a) => timed(() => helpers.register(course, a, a.admission)));
    const [refused, registered] = [await Promise.all(bots), await Promise.all(students)];
    for (const { answer } of registered) assert.equal(answer.status, 201, JSON.stringify(answer.body));
    for (const { answer, startedAt, endedAt } of refused) {
      assertProblem(answer, 403, 'not-admitted', 'a bot');
      assert.ok(endedAt - startedAt >= HOLD_MS - 50, `a refusal written after ${Math.round(endedAt - startedAt)} ms, before the hold`);
    }
    const lastCreated = Math.max(...registered.map((r) => r.endedAt));
    const firstRefused = Math.min(...refused.map((r) => r.endedAt));
    assert.ok(lastCreated < firstRefused, 'every admitted student was answered while the refusals were held');
    assert.equal(await countRegistrations(), 20, 'the admitted students registered, no bot did');
    assert.deepEqual((await helpers.statuses(course)).registered, 20);
    await assertInvariants(holding.db.sql);
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
