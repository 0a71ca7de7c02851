// Each entry of the retry policy (src/db/retry-policy.ts) taken in a real PostgreSQL: the race or
// the failure that raises its error is forced, and the test checks the steps taken, the attempts
// and the outcome stored.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type RegisterOutcome, type RegisterParams, registerBatch } from '../../src/db/queries/registrations.queries.ts';
import { type FailedAttempt, MAX_ATTEMPTS, retryTransaction, settledValue } from '../../src/db/retry-policy.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { assertInvariants } from '../support/invariants.ts';
import { untilARegistrationWaitsForALock } from '../support/lock-waits.ts';

describe('the retry policy, each entry taken', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  async function newCourse(capacity: number, waitlistCapacity = 0): Promise<string> {
    const id = `c-${randomBytes(5).toString('hex')}`;
    await db.sql`INSERT INTO courses (id, title, capacity, waitlist_capacity) VALUES (${id}, ${`Course ${id}`}, ${capacity}, ${waitlistCapacity})`;
    return id;
  }

  function params(course: string, student: string, keyed = false): RegisterParams {
    return {
      courseId: course, name: `Student ${student}`, email: `${student}@example.org`, emailKey: `${student}@example.org`,
      manageToken: `token-${student}`.padEnd(32, '0'),
      idempotency: keyed ? { keyHash: Buffer.from(`key-${student}`), requestHash: Buffer.from(`request-${student}`), sealedToken: Buffer.from('sealed') } : null,
    };
  }

  /** Registers `students` as one batch on `sql`, recording each failed attempt and its step. */
  async function register(sql: TestDatabase['sql'], course: string, students: string[], steps: FailedAttempt[] = [], keyed = false) {
    return registerBatch(sql, students.map((s) => params(course, s, keyed)), (failed) => steps.push(failed));
  }

  const outcomes = (results: PromiseSettledResult<RegisterOutcome>[]) => results.map((r) => settledValue(r));
  const stepsOf = (steps: FailedAttempt[]) => steps.map(({ code, lockFirst, step }) => ({ code, lockFirst, step }));

  /** Runs `held` in a transaction on a connection of its own, then `racing` on the pool while that transaction is open; commits once `racing` waits for a lock. */
  async function raceWithOpenTransaction<T>(held: (h: TestDatabase['sql']) => Promise<unknown>, racing: () => Promise<T>): Promise<T> {
    const h = await db.sql.reserve();
    try {
      await h`BEGIN`;
      await held(h);
      const raced = racing();
      await untilARegistrationWaitsForALock(db.sql);
      await h`COMMIT`;
      return await raced;
    } finally {
      h.release();
    }
  }

  test('RGB01: a course filled while a lock-last batch decided; decided again locked first, the student waitlisted', async () => {
    const course = await newCourse(1, 2);
    const steps: FailedAttempt[] = [];
    const [late] = outcomes(await raceWithOpenTransaction(
      (h) => register(h, course, ['rgb-early']), // takes the seat, holds the course until COMMIT
      () => register(db.sql, course, ['rgb-late'], steps)));
    assert.deepEqual(stepsOf(steps), [{ code: 'RGB01', lockFirst: false, step: 'lock-first' }]);
    assert.equal(late!.outcome, 'created');
    assert.deepEqual(late!.outcome === 'created' && [late!.registration.status, late!.registration.waitlist_position], ['waitlisted', 1]);
    await assertInvariants(db.sql);
  });

  test('23505: the same student committed meanwhile; the lock-last insert fails on the unique index, decided again locked first: existing', async () => {
    const course = await newCourse(5);
    const steps: FailedAttempt[] = [];
    let first: RegisterOutcome | undefined;
    const [again] = outcomes(await raceWithOpenTransaction(
      async (h) => { [first] = outcomes(await register(h, course, ['dup-x'])); },
      () => register(db.sql, course, ['dup-x'], steps))); // its insert waits for the open row, then meets it
    assert.deepEqual(stepsOf(steps), [{ code: '23505', lockFirst: false, step: 'lock-first' }]);
    assert.equal(first!.outcome, 'created');
    assert.equal(again!.outcome, 'existing');
    assert.equal(again!.outcome === 'existing' && again!.registration.id, first!.outcome === 'created' && first!.registration.id);
    const [rows] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
    assert.equal(rows!.n, 1);
    await assertInvariants(db.sql);
  });

  test('40P01, lock last: deadlocked with a locked-first batch inserting the same student; decided again locked first: existing', async () => {
    const course = await newCourse(5);
    const steps: FailedAttempt[] = [];
    const h = await db.sql.reserve();
    try {
      await h`BEGIN`;
      // The keyed side waits 10 s before looking for a deadlock, so the lock-last side finds it.
      await h`SET LOCAL deadlock_timeout = '10s'`;
      await h`SELECT 1 FROM courses WHERE id = ${course} FOR NO KEY UPDATE`;
      const lockLast = register(db.sql, course, ['dl-x'], steps); // writes its row, then waits for the course
      await untilARegistrationWaitsForALock(db.sql);
      const [keyed] = outcomes(await register(h, course, ['dl-x'], [], true)); // locked first: waits for that row: a cycle
      await h`COMMIT`;
      const [last] = outcomes(await lockLast);
      assert.deepEqual(stepsOf(steps), [{ code: '40P01', lockFirst: false, step: 'lock-first' }]);
      assert.equal(keyed!.outcome, 'created');
      assert.equal(last!.outcome, 'existing');
    } finally {
      h.release();
    }
    await assertInvariants(db.sql);
  });

  test('40P01, locked first: the keyed batch is the one PostgreSQL fails; run again locked first: created', async () => {
    const course = await newCourse(5);
    const steps: FailedAttempt[] = [];
    const h = await db.sql.reserve();
    let answer: PromiseSettledResult<RegisterOutcome>[];
    try {
      await h`BEGIN`;
      await h`SET LOCAL deadlock_timeout = '10s'`;
      // H holds an uncommitted row of the student (and the course only by key).
      await h`INSERT INTO registrations (course_id, name, email, email_key, status) VALUES (${course}, 'Held', 'dl-y@example.org', 'dl-y@example.org', 'enrolled')`;
      const keyed = register(db.sql, course, ['dl-y'], steps, true);
      await untilARegistrationWaitsForALock(db.sql); // the batch holds the course and waits for H's row
      await h`SELECT 1 FROM courses WHERE id = ${course} FOR NO KEY UPDATE`; // a cycle: PostgreSQL fails the batch
      await h`ROLLBACK`;
      answer = await keyed;
    } finally {
      h.release();
    }
    // On a busy machine PostgreSQL has also failed the rerun, before H rolled back (seen once
    // in a full run); the attempt after it is created. Every step must be this one.
    assert.ok(steps.length >= 1, 'the keyed batch met a deadlock');
    for (const step of stepsOf(steps)) assert.deepEqual(step, { code: '40P01', lockFirst: true, step: 'lock-first' });
    assert.equal(outcomes(answer)[0]!.outcome, 'created');
    await assertInvariants(db.sql);
  });

  test('40001: a repeatable-read transaction whose row another one changed runs again as it was', async () => {
    const course = await newCourse(5);
    const steps: FailedAttempt[] = [];
    let attempts = 0;
    await retryTransaction(() => db.sql.begin('isolation level repeatable read', async (tx) => {
      attempts += 1;
      await tx`SELECT title FROM courses WHERE id = ${course}`; // the snapshot is taken here
      if (attempts === 1) await db.sql`UPDATE courses SET title = 'Changed meanwhile' WHERE id = ${course}`;
      await tx`UPDATE courses SET title = ${`Renamed on attempt ${attempts}`} WHERE id = ${course}`;
    }), { onStep: (failed) => steps.push(failed) });
    assert.deepEqual(stepsOf(steps), [{ code: '40001', lockFirst: false, step: 'again' }]);
    const [row] = await db.sql<{ title: string }[]>`SELECT title FROM courses WHERE id = ${course}`;
    assert.equal(row!.title, 'Renamed on attempt 2');
  });

  describe('errors no rule covers, raised by a trigger on one student', () => {
    before(async () => {
      await db.sql.unsafe(`
        CREATE FUNCTION refuse_student() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.name = 'Student poison' THEN RAISE EXCEPTION 'poisoned member'; END IF;
          IF NEW.name = 'Student unlucky' THEN RAISE EXCEPTION 'never serializable' USING ERRCODE = 'serialization_failure'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_student BEFORE INSERT ON registrations FOR EACH ROW EXECUTE FUNCTION refuse_student();`);
    });
    after(async () => {
      await db.sql.unsafe('DROP TRIGGER refuse_student ON registrations; DROP FUNCTION refuse_student();');
    });

    test('a batch failing for one member is split: the others are registered, the member alone gets its error', async () => {
      const course = await newCourse(10);
      const steps: FailedAttempt[] = [];
      const results = await register(db.sql, course, ['ok1', 'poison', 'ok2'], steps);
      assert.deepEqual(steps.map(({ code, members, step }) => ({ code, members, step })), [
        { code: 'P0001', members: 3, step: 'split' },
        { code: 'P0001', members: 1, step: 'answer' },
      ]);
      assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : 'failed')), ['created', 'failed', 'created']);
      assert.match(String((results[1] as PromiseRejectedResult).reason), /poisoned member/);
      await assertInvariants(db.sql);
    });

    test('an error of the table that keeps coming back is the answer after MAX_ATTEMPTS', async () => {
      const course = await newCourse(10);
      const steps: FailedAttempt[] = [];
      const [result] = await register(db.sql, course, ['unlucky'], steps);
      assert.deepEqual(steps.map(({ code, attempt, step }) => ({ code, attempt, step })), [
        ...Array.from({ length: MAX_ATTEMPTS - 1 }, (_, i) => ({ code: '40001', attempt: i + 1, step: 'again' })),
        { code: '40001', attempt: MAX_ATTEMPTS, step: 'answer' },
      ]);
      assert.equal(result!.status, 'rejected');
      const [rows] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
      assert.equal(rows!.n, 0);
    });
  });

  test('the already-registered probe (registrar_active_registration) is inlined: an index probe, not a function call', async () => {
    const planOf = async (probe: string) => {
      const [plan] = await db.sql.unsafe<{ 'QUERY PLAN': unknown }[]>(`
        EXPLAIN (FORMAT JSON) SELECT r.id FROM unnest(ARRAY['c-1', 'c-2'], ARRAY['a@example.org', 'b@example.org']) AS s (c, k)
        CROSS JOIN LATERAL ${probe}(s.c, s.k) r`);
      return JSON.stringify(plan!['QUERY PLAN']);
    };
    const plan = await planOf('registrar_active_registration');
    assert.doesNotMatch(plan, /registrar_active_registration/, plan);
    assert.match(plan, /Index/, plan);
    // The control: a STRICT copy cannot be inlined, and its call shows in the plan.
    await db.sql.unsafe(`CREATE FUNCTION strict_probe(p_course_id text, p_email_key text) RETURNS SETOF registrations
      LANGUAGE sql STABLE STRICT AS $$ SELECT * FROM registrar_active_registration(p_course_id, p_email_key) $$`);
    assert.match(await planOf('strict_probe'), /strict_probe/);
    await db.sql`DROP FUNCTION strict_probe(text, text)`;
  });
});
