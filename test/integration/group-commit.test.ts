// The group commit path against a real PostgreSQL, over real HTTP: hundreds of requests for one
// course at once (duplicates, cancels and waitlist moves among them) end with every invariant
// intact; a member that fails inside a batch fails alone; and the batch's plans stay on the
// indexes when the tables grow after the plans were first made on empty tables.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, test } from 'node:test';
import { connectDatabase } from '../../src/db/database.ts';
import { FULL_COURSE_RECHECK_MS } from '../../src/domain/full-courses.ts';
import { observeRegistrationBatches, registerBatch } from '../../src/db/queries/registrations.queries.ts';
import { type FailedAttempt, settledValue } from '../../src/db/retry-policy.ts';
import type { TestDatabase } from '../support/database.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer } from '../support/http.ts';
import { assertInvariants, waitlistPositions } from '../support/invariants.ts';
import { untilARegistrationWaitsForALock } from '../support/lock-waits.ts';
import { countBy } from '../support/rush.ts';
import { useStack } from '../support/stack.ts';

describe('hundreds at once through the group commit', () => {
  const stack = useStack();
  /** The size of every registration batch, as the metrics see them. */
  const batches: number[] = [];
  before(() => observeRegistrationBatches(stack.db.sql, (size) => batches.push(size)));

  test('one course: duplicates, cancels and waitlist moves racing; the database agrees with every answer', async () => {
    const course = await newCourse(stack.server.client, { capacity: 60, waitlistCapacity: 40 });
    const batchesBefore = batches.length;
    // 300 students, 100 of them twice (the second time in capitals with spaces), all at once.
    const requests = Array.from({ length: 300 }, (_, i) => student(course, i, 'gc'));
    const repeats = requests.slice(0, 100).map((s) => ({ ...s, email: `  ${s.email.toUpperCase()} ` }));
    const answers = await Promise.all([...requests, ...repeats].map((body) => stack.server.client.register(body)));
    const statuses = countBy(answers, (a) => a.status);
    assert.equal(statuses[201], 100, JSON.stringify(statuses));
    const rush = batches.slice(batchesBefore);
    assert.ok(rush.length < 400 / 4, `batched: ${rush.length} batches for 400 requests`);
    assert.ok(Math.max(...rush) > 1);

    // Each student has one registration, whatever the answer said (201 or 200 with it, or 409).
    const created = answers.filter((a) => a.status === 201).map((a) => a.body);
    const sameStudent = answers.filter((a) => a.status === 200).map((a) => a.body);
    // A 200 shows only what was sent: the same student (course, email) holds a 201.
    for (const existing of sameStudent) {
      assert.deepEqual(Object.keys(existing).sort(), ['alreadyRegistered', 'course', 'email']);
      assert.ok(created.some((c) => c.course === existing.course && c.email.toLowerCase() === existing.email.toLowerCase()), 'a 200 answers an earlier registration');
    }
    assert.deepEqual(created.filter((r) => r.status === 'waitlisted').map((r) => r.waitlistPosition).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));

    // Now cancels of enrolled and waitlisted students race with newcomers: seats go to the
    // waitlist first, in order, and positions close up.
    const enrolled = created.filter((r) => r.status === 'enrolled').slice(0, 15);
    const waitlisted = created.filter((r) => r.status === 'waitlisted').slice(5, 15);
    const moves = await Promise.all([
      ...[...enrolled, ...waitlisted].map((r) => stack.server.client.admin('DELETE', `/registrations/${r.id}`)),
      ...Array.from({ length: 100 }, (_, i) => stack.server.client.register(student(course, 1000 + i, 'late'))),
    ]);
    assert.ok(moves.every((a) => [200, 201, 409].includes(a.status)), JSON.stringify(countBy(moves, (a) => a.status)));
    const positions = await waitlistPositions(stack.db.sql, course);
    assert.deepEqual(positions, Array.from({ length: positions.length }, (_, i) => i + 1));
    const [counts] = await stack.db.sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
    assert.equal(counts!.enrolled, 60, 'the seats freed were taken again');
    // Every registration change has its event, and its email job, once.
    const [events] = await stack.db.sql<{ missing: number }[]>`
      SELECT count(*)::int AS missing FROM registrations r
      WHERE NOT EXISTS (SELECT 1 FROM registration_events e WHERE e.registration_id = r.id AND e.kind IN ('enrolled', 'waitlisted'))
        AND r.course_id = ${course}`;
    assert.equal(events!.missing, 0);
    await assertInvariants(stack.db.sql);
  });

  test('a member that fails inside a batch fails alone: the others of its batch are registered', async () => {
    const course = await newCourse(stack.server.client, { capacity: 100 });
    await stack.db.sql.unsafe(`
      CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.name = 'Student poison' THEN RAISE EXCEPTION 'poisoned member'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_poison BEFORE INSERT ON registrations FOR EACH ROW EXECUTE FUNCTION refuse_poison();`);
    try {
      const batchesBefore = batches.length;
      const bodies = Array.from({ length: 60 }, (_, i) => student(course, i, 'ok'));
      bodies.splice(30, 0, { name: 'Student poison', email: 'poison@example.org', course });
      // Sent together, so the poison shares a batch with others.
      const answers = await Promise.all(bodies.map((body) => stack.server.client.register(body)));
      const poison = answers[30]!;
      assert.equal(poison.status, 500);
      assert.doesNotMatch(JSON.stringify(poison.body), /poisoned member/, 'no SQL error in the answer');
      assert.deepEqual(countBy(answers.filter((_, i) => i !== 30), (a) => a.status), { 201: 60 });
      assert.ok(batches.slice(batchesBefore).some((size) => size > 1), 'the poison went in a batch with others');
      const [row] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
      assert.equal(row!.n, 60);
      await assertInvariants(stack.db.sql);
    } finally {
      await stack.db.sql.unsafe('DROP TRIGGER refuse_poison ON registrations; DROP FUNCTION refuse_poison();');
    }
  });
});

describe('plans on a fresh term', () => {
  // Few connections, so each one's cached plans are used again and again.
  const stack = useStack({ poolSize: 2 });

  const GROWING = ['registrations', 'registration_events', 'manage_tokens', 'idempotency_keys'];

  type Reads = { seqScans: Record<string, number>; tuplesRead: number };

  /** Sequential scans of the growing tables, and the rows read from registrations however. */
  async function reads(): Promise<Reads> {
    // Backends report their counters when idle, at most once a second.
    await sleep(1_500);
    const rows = await stack.db.sql<{ relname: string; seq_scan: number; tuples: number }[]>`
      SELECT relname, seq_scan::int, (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int AS tuples
      FROM pg_stat_user_tables WHERE relname = ANY (${GROWING})`;
    return {
      seqScans: Object.fromEntries(rows.map((r) => [r.relname, r.seq_scan])),
      tuplesRead: rows.find((r) => r.relname === 'registrations')!.tuples,
    };
  }

  test('plans made on emptied tables still use the indexes once the tables are large', async () => {
    // A new term: empty tables, their statistics say so, and autovacuum will not say otherwise.
    for (const table of GROWING) await stack.db.sql.unsafe(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    await stack.db.sql`ANALYZE`;
    const course = await newCourse(stack.server.client, { capacity: 100_000, waitlistCapacity: 10 });
    // Plans are made and cached on the empty tables (plpgsql and prepared statements cache a
    // plan after a few runs).
    for (let round = 0; round < 15; round++) {
      await Promise.all(Array.from({ length: 4 }, (_, i) => stack.server.client.register(student(course, round * 4 + i, 'warm'))));
      await stack.server.client.register(student(course, round, 'key'), { 'idempotency-key': `warm-${round}` });
    }
    // The term fills up: 60,000 registrations, events and tokens (no ANALYZE).
    await stack.db.sql`
      WITH r AS (
        INSERT INTO registrations (course_id, name, email, email_key, status)
        SELECT ${course}, 'Filler ' || n, 'filler' || n || '@example.org', 'filler' || n || '@example.org', 'enrolled'
        FROM generate_series(1, 60000) n RETURNING id
      ), e AS (
        INSERT INTO registration_events (registration_id, course_id, kind, actor, reason) SELECT id, ${course}, 'enrolled', 'student', 'enrolled: a seat was free' FROM r
      )
      INSERT INTO manage_tokens (token_hash, registration_id) SELECT sha256(convert_to(id::text, 'UTF8')), id FROM r`;
    await stack.db.sql`UPDATE courses SET enrolled = enrolled + 60000 WHERE id = ${course}`;
    await stack.db.sql`INSERT INTO idempotency_keys (key_hash, request_hash) SELECT sha256(convert_to(n::text, 'UTF8')), '\\x00' FROM generate_series(1, 60000) n`;

    const before = await reads();
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.server.client.register(student(course, round * 20 + i, 'later'))));
      assert.deepEqual(countBy(answers, (a) => a.status), { 201: 20 });
      assert.equal((await stack.server.client.register(student(course, round, 'keylater'), { 'idempotency-key': `later-${round}` })).status, 201);
    }
    const afterwards = await reads();
    assert.deepEqual(afterwards.seqScans, before.seqScans, 'no sequential scan of a large table on the registration path');
    // 210 registrations: a few index probes each, never a walk through the 60,000 rows.
    const perRegistration = (afterwards.tuplesRead - before.tuplesRead) / 210;
    assert.ok(perRegistration < 20, `rows of registrations read per registration: ${perRegistration}`);
    await assertInvariants(stack.db.sql);
  });
});

describe('deciding a batch first, locking its courses last', () => {
  const stack = useStack();

  type Outcome = { outcome: string; registration?: { id: string; status: string; waitlist_position: number | null } };

  /** `students` of `course` as one batch of the service's registerBatch (lock last, then as the
   * retry policy decides), on `sql`; with `keyed`, each with an Idempotency-Key (decided locked
   * first); `onStep` is told of each failed attempt. */
  async function registerStudents(sql: TestDatabase['sql'], course: string, students: string[], keyed = false, onStep?: (failed: FailedAttempt) => void): Promise<Outcome[]> {
    const results = await registerBatch(sql, students.map((s) => ({
      courseId: course, name: `Student ${s}`, email: `${s}@example.org`, emailKey: `${s}@example.org`,
      manageToken: `token-${s}`.padEnd(32, '0'),
      idempotency: keyed ? { keyHash: Buffer.from(`key-${s}`), requestHash: Buffer.from(`key-${s}`), sealedToken: Buffer.from('sealed') } : null,
    })), onStep);
    return results.map((result) => settledValue(result) as Outcome);
  }

  /**
   * Transaction A does `first` (which takes the course lock), then batch B (`second`, no keys)
   * reads, decides and writes on the counters A has not committed, and waits for the course
   * lock; A then does `then` and commits. Returns B's outcomes and the seq numbers of B's rows.
   */
  async function raceWithTransaction(course: string, second: string[], first: (a: TestDatabase['sql']) => Promise<unknown>, then?: (a: TestDatabase['sql']) => Promise<unknown>) {
    const a = await stack.db.sql.reserve();
    try {
      await a`BEGIN`;
      await first(a); // holds the course lock until COMMIT
      const b = registerStudents(stack.db.sql, course, second);
      await untilARegistrationWaitsForALock(stack.db.sql);
      await then?.(a);
      await a`COMMIT`;
      const outcomes = await b;
      const seqs = await stack.db.sql<{ seq: string }[]>`
        SELECT seq::text FROM registrations WHERE course_id = ${course} AND email = ANY (${second.map((s) => `${s}@example.org`)}) ORDER BY seq`;
      return { outcomes, seqs: seqs.map((s) => Number(s.seq)) };
    } finally {
      a.release();
    }
  }

  /** Batch A commits while batch B, decided on the counters A had not changed yet, waits for the course lock. */
  function raceTwoBatches(course: string, first: string[], second: string[]) {
    return raceWithTransaction(course, second, (a) => registerStudents(a, course, first));
  }

  async function eventsPerRegistration(course: string): Promise<number[]> {
    const rows = await stack.db.sql<{ n: number }[]>`
      SELECT count(e.id)::int AS n FROM registrations r LEFT JOIN registration_events e ON e.registration_id = r.id
      WHERE r.course_id = ${course} GROUP BY r.id`;
    return rows.map((r) => r.n);
  }

  test('two workers\' group commits racing on the same courses: seats, waitlists, duplicates and cancels; the database agrees with every answer', async () => {
    // A second pool is a second worker: its own group commit, its batches alongside the first's.
    const otherSql = connectDatabase(stack.db.url, { max: 10, applicationName: 'registrar-test-2' });
    const other = await startTestServer(otherSql);
    try {
      const courses = await Promise.all([0, 1, 2].map(() => newCourse(stack.server.client, { capacity: 40, waitlistCapacity: 20 })));
      const clients = [stack.server.client, other.client];
      // 3 courses x 100 students, 60 of them twice (other case, spaces), all at once, alternating workers.
      const bodies = courses.flatMap((course) => Array.from({ length: 100 }, (_, i) => student(course, i, `two${course.slice(-4)}`)));
      const repeats = bodies.filter((_, i) => i % 5 === 0).map((b) => ({ ...b, email: ` ${b.email.toUpperCase()}  ` }));
      const answers = await Promise.all([...bodies, ...repeats].map((body, i) => clients[i % 2]!.register(body)));
      const statuses = countBy(answers, (a) => a.status);
      assert.equal(statuses[201], 180, JSON.stringify(statuses)); // 3 x (40 seats + 20 waitlist places)
      assert.equal((statuses[200] ?? 0) + (statuses[409] ?? 0), answers.length - 180, JSON.stringify(statuses));
      const studentOf = (body: { course: string; email: string }) => `${body.course}\n${body.email.trim().toLowerCase()}`;
      const placed = new Set(answers.filter((a) => a.status === 201).map((a) => studentOf(a.body)));
      assert.ok(answers.filter((a) => a.status === 200).every((a) => a.body.alreadyRegistered === true && placed.has(studentOf(a.body))), 'a 200 is a student answered 201');
      for (const course of courses) {
        assert.deepEqual(await waitlistPositions(stack.db.sql, course), Array.from({ length: 20 }, (_, i) => i + 1));
      }
      // Cancels on both workers race with newcomers on both.
      const created = answers.filter((a) => a.status === 201).map((a) => a.body);
      const leaving = [...created.filter((r) => r.status === 'enrolled').slice(0, 30), ...created.filter((r) => r.status === 'waitlisted').slice(0, 12)];
      const moves = await Promise.all([
        ...leaving.map((r, i) => clients[i % 2]!.admin('DELETE', `/registrations/${r.id}`)),
        ...courses.flatMap((course) => Array.from({ length: 40 }, (_, i) => student(course, 500 + i, `late${course.slice(-4)}`))).map((body, i) => clients[(i + 1) % 2]!.register(body)),
      ]);
      assert.ok(moves.every((a) => [200, 201, 409].includes(a.status)), JSON.stringify(countBy(moves, (a) => a.status)));
      for (const course of courses) {
        const positions = await waitlistPositions(stack.db.sql, course);
        assert.deepEqual(positions, Array.from({ length: positions.length }, (_, i) => i + 1));
        const [row] = await stack.db.sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
        assert.ok(row!.enrolled === 40 || row!.waitlisted === 0, `nobody waits while a seat is free: ${JSON.stringify(row)}`);
      }
      // A worker that saw a course full believes it for up to FULL_COURSE_RECHECK_MS; after
      // that, the seats the cancels freed go to newcomers on either worker.
      await sleep(FULL_COURSE_RECHECK_MS + 50);
      await Promise.all(courses.flatMap((course) => Array.from({ length: 40 }, (_, i) => student(course, 900 + i, `later${course.slice(-4)}`))).map((body, i) => clients[i % 2]!.register(body)));
      for (const course of courses) {
        const [row] = await stack.db.sql<{ enrolled: number }[]>`SELECT enrolled FROM courses WHERE id = ${course}`;
        assert.equal(row!.enrolled, 40, 'every freed seat taken again');
      }
      const [events] = await stack.db.sql<{ missing: number; extra: number }[]>`
        SELECT count(*) FILTER (WHERE n = 0)::int AS missing, count(*) FILTER (WHERE n > 1)::int AS extra FROM (
          SELECT count(e.id) FILTER (WHERE e.kind IN ('enrolled', 'waitlisted')) AS n FROM registrations r
          LEFT JOIN registration_events e ON e.registration_id = r.id WHERE r.course_id = ANY (${courses}) GROUP BY r.id) per`;
      assert.deepEqual({ ...events }, { missing: 0, extra: 0 }, 'one creation event (one email) per registration');
      await assertInvariants(stack.db.sql);
    } finally {
      await other.close();
      await otherSql.end({ timeout: 5 });
    }
  });

  // Several batches of one worker are in flight at once (REGISTRATION_BATCHES_IN_FLIGHT): its
  // group commit keeps them on disjoint courses, but a keyed request goes at once beside them,
  // and a multi-course batch beside single-course ones; here two batches of one pool, both
  // decided on the same read of one course, wait for its lock together.
  for (const shared of [false, true]) {
    test(`two batches of one worker racing on one course${shared ? ', one student in both' : ''}: one commits, the other is decided again locked first; never over capacity, no duplicate, the waitlist 1..n`, async () => {
      const course = await newCourse(stack.server.client, { capacity: 4, waitlistCapacity: 2 });
      const tag = shared ? 'race1s' : 'race1';
      const firstStudents = [`${tag}-a1`, `${tag}-a2`, `${tag}-a3`, `${tag}-a4`];
      const secondStudents = [`${tag}-b1`, `${tag}-b2`, `${tag}-b3`, shared ? `${tag}-a4` : `${tag}-b4`];
      const steps: FailedAttempt[] = [];
      const h = await stack.db.sql.reserve();
      let outcomes: Outcome[][];
      try {
        await h`BEGIN`;
        await h`SELECT 1 FROM courses WHERE id = ${course} FOR NO KEY UPDATE`;
        // Both read 4 free seats, decide and write; then both wait: for the course lock, or (the
        // shared student's second insert) for the other batch's row.
        const both = [firstStudents, secondStudents].map((students) => registerStudents(stack.db.sql, course, students, false, (failed) => steps.push(failed)));
        await untilARegistrationWaitsForALock(stack.db.sql, 2);
        await h`COMMIT`;
        outcomes = await Promise.all(both);
      } finally {
        h.release();
      }
      assert.deepEqual(steps.map((s) => [s.code, s.lockFirst, s.step]), [[shared ? '23505' : 'RGB01', false, 'lock-first']], 'one batch decided again, locked first');
      const all = outcomes.flat();
      const count = (outcome: string) => all.filter((o) => o.outcome === outcome).length;
      assert.deepEqual({ created: count('created'), existing: count('existing'), full: count('course-full') }, { created: 6, existing: shared ? 1 : 0, full: shared ? 1 : 2 });
      if (shared) {
        // The shared student, last of each batch: created by one, found by the other.
        const answers = outcomes.map((batch) => batch[3]!);
        assert.deepEqual(answers.map((o) => o.outcome).sort(), ['created', 'existing']);
        assert.equal(answers[0]!.registration!.id, answers[1]!.registration!.id);
      }
      const rows = await stack.db.sql<{ email_key: string; status: string }[]>`SELECT email_key, status::text FROM registrations WHERE course_id = ${course} ORDER BY seq`;
      assert.equal(rows.length, 6);
      assert.equal(new Set(rows.map((r) => r.email_key)).size, 6, 'no student twice');
      const [counts] = await stack.db.sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
      assert.deepEqual({ ...counts }, { enrolled: 4, waitlisted: 2 });
      assert.deepEqual(rows.map((r) => r.status).sort(), ['enrolled', 'enrolled', 'enrolled', 'enrolled', 'waitlisted', 'waitlisted']);
      assert.deepEqual(await waitlistPositions(stack.db.sql, course), [1, 2]);
      assert.deepEqual(await eventsPerRegistration(course), [1, 1, 1, 1, 1, 1], 'one event (one email) per registration');
      await assertInvariants(stack.db.sql);
    });
  }

  test('a course that filled up meanwhile: the batch is decided again, locked; never over capacity, the waitlist in order', async () => {
    const course = await newCourse(stack.server.client, { capacity: 3, waitlistCapacity: 2 });
    const { outcomes, seqs } = await raceTwoBatches(course, ['early1', 'early2'], ['late1', 'late2', 'late3']);
    // Read while A was open, B saw 3 free seats; decided again after A, it finds one.
    assert.deepEqual(outcomes.map((o) => [o.outcome, o.registration?.status, o.registration?.waitlist_position]), [
      ['created', 'enrolled', null],
      ['created', 'waitlisted', 1],
      ['created', 'waitlisted', 2],
    ]);
    // B's first attempt (3 rows, written before A committed) was rolled back; the identity
    // numbers it took stay used: a gap of 3 between A's rows and B's.
    const [early] = await stack.db.sql<{ last: string }[]>`SELECT max(seq)::text AS last FROM registrations WHERE course_id = ${course} AND email LIKE 'early%'`;
    assert.deepEqual(seqs, [1, 2, 3].map((k) => Number(early!.last) + 3 + k), 'decided twice: first on what it read, then locked');
    const [counts] = await stack.db.sql<{ enrolled: number; waitlisted: number; rows: number }[]>`
      SELECT enrolled, waitlisted, (SELECT count(*)::int FROM registrations WHERE course_id = ${course}) AS rows FROM courses WHERE id = ${course}`;
    assert.deepEqual({ ...counts }, { enrolled: 3, waitlisted: 2, rows: 5 });
    assert.deepEqual(await eventsPerRegistration(course), [1, 1, 1, 1, 1], 'one event (one email) per registration: none left from the rolled-back attempt');
    await assertInvariants(stack.db.sql);
  });

  test('a course that changed meanwhile but still has the seats: the decisions stand, nothing is done twice', async () => {
    const course = await newCourse(stack.server.client, { capacity: 10 });
    const [before_] = await stack.db.sql<{ last: string }[]>`SELECT coalesce(max(seq), 0)::text AS last FROM registrations`;
    const { outcomes, seqs } = await raceTwoBatches(course, ['first1', 'first2'], ['then1', 'then2', 'then3']);
    assert.deepEqual(outcomes.map((o) => [o.outcome, o.registration?.status]), [['created', 'enrolled'], ['created', 'enrolled'], ['created', 'enrolled']]);
    // B read and wrote while A's transaction was still open, and its rows were written once:
    // the five rows of the course take the five identity numbers after those used before.
    const rows = await stack.db.sql<{ seq: string }[]>`SELECT seq::text FROM registrations WHERE course_id = ${course} ORDER BY seq`;
    assert.equal(rows.length, 5);
    assert.ok(seqs.every((seq) => seq > Number(before_!.last) && seq <= Number(before_!.last) + 5), `no attempt rolled back: ${seqs}`);
    const [counts] = await stack.db.sql<{ enrolled: number }[]>`SELECT enrolled FROM courses WHERE id = ${course}`;
    assert.equal(counts!.enrolled, 5, 'both batches counted');
    assert.deepEqual(await eventsPerRegistration(course), [1, 1, 1, 1, 1]);
    await assertInvariants(stack.db.sql);
  });
  test('a cancel and a newcomer committed meanwhile leave the counters as read: the row version still sends the batch to be decided again', async () => {
    const course = await newCourse(stack.server.client, { capacity: 1, waitlistCapacity: 3 });
    const first = await registerStudents(stack.db.sql, course, ['aba-seat', 'aba-w1', 'aba-w2']);
    const w1Id = first[1]!.registration!.id;
    let newcomer: Outcome | undefined;
    // A cancels waitlisted w1; B (reading 1 enrolled, 2 waitlisted) places its student third and
    // waits; A then waitlists a newcomer and commits: counters as B read them (1 and 2), but B's
    // row was written before the newcomer's. Deciding B again gives it the place after him.
    const { outcomes } = await raceWithTransaction(course, ['aba-late'],
      (a) => a`SELECT registrar_cancel(${w1Id}::uuid, 'student')`,
      async (a) => { [newcomer] = await registerStudents(a, course, ['aba-new']); });
    assert.equal(newcomer?.registration?.waitlist_position, 2);
    assert.equal(outcomes[0]!.registration?.waitlist_position, 3);
    // Every position answered is the position stored.
    const stored = await stack.db.sql<{ email: string; position: string }[]>`
      SELECT email, registrar_registration_row(r) ->> 'waitlist_position' AS position
      FROM registrations r WHERE course_id = ${course} AND status = 'waitlisted' ORDER BY seq`;
    assert.deepEqual(stored.map((r) => [r.email, Number(r.position)]), [['aba-w2@example.org', 1], ['aba-new@example.org', 2], ['aba-late@example.org', 3]]);
    await assertInvariants(stack.db.sql);
  });

  test('a lock-last batch deadlocked with a locked-first one inserting the same student: decided again, locked; one registration', async () => {
    const course = await newCourse(stack.server.client, { capacity: 5 });
    const h = await stack.db.sql.reserve();
    try {
      await h`BEGIN`;
      // The keyed side waits 10 s before looking for a deadlock, so the lock-last side finds it.
      await h`SET LOCAL deadlock_timeout = '10s'`;
      await h`SELECT 1 FROM courses WHERE id = ${course} FOR NO KEY UPDATE`;
      const lockLast = registerStudents(stack.db.sql, course, ['dl-x']); // writes its row, then waits for the course
      await untilARegistrationWaitsForALock(stack.db.sql);
      const [keyed] = await registerStudents(h, course, ['dl-x'], true); // locked first: waits for that row: a cycle
      await h`COMMIT`;
      const [last] = await lockLast;
      assert.equal(keyed!.outcome, 'created');
      assert.equal(last!.outcome, 'existing');
      assert.equal(last!.registration!.id, keyed!.registration!.id);
    } finally {
      h.release();
    }
    const [rows] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows!.n, 1);
    await assertInvariants(stack.db.sql);
  });

  test('a keyed request that PostgreSQL fails to break a deadlock is run again: 201, not a 500', async () => {
    const course = await newCourse(stack.server.client, { capacity: 5 });
    const h = await stack.db.sql.reserve();
    try {
      await h`BEGIN`;
      await h`SET LOCAL deadlock_timeout = '10s'`;
      // H holds an uncommitted row of the student (and the course only by key).
      await h`INSERT INTO registrations (course_id, name, email, email_key, status) VALUES (${course}, 'Held', 'dl-y@example.org', 'dl-y@example.org', 'enrolled')`;
      const answer = stack.server.client.register({ name: 'Student Y', email: 'dl-y@example.org', course }, { 'idempotency-key': 'deadlock-y' });
      await untilARegistrationWaitsForALock(stack.db.sql); // the request holds the course and waits for H's row
      await h`SELECT 1 FROM courses WHERE id = ${course} FOR NO KEY UPDATE`; // a cycle: PostgreSQL fails the request's transaction
      await h`ROLLBACK`;
      const { status, body } = await answer;
      assert.equal(status, 201, JSON.stringify(body));
    } finally {
      h.release();
    }
    const [rows] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows!.n, 1);
    await assertInvariants(stack.db.sql);
  });
});
