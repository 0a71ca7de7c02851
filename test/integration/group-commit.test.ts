// The group commit path against a real PostgreSQL, over real HTTP: hundreds of requests for one
// course at once (duplicates, cancels and waitlist moves among them) end with every invariant
// intact; a member that fails inside a batch fails alone; and the batch's plans stay on the
// indexes when the tables grow after the plans were first made on empty tables.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { observeRegistrationBatches } from '../../src/db/queries/registrations.queries.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';
import { assertInvariants, waitlistPositions } from '../support/invariants.ts';
import { countBy } from '../support/rush.ts';

describe('hundreds at once through the group commit', () => {
  let db: TestDatabase;
  let server: TestServer;
  /** The size of every registration batch, as the metrics see them. */
  const batches: number[] = [];
  before(async () => {
    db = await createTestDatabase();
    server = await startTestServer(db.sql);
    observeRegistrationBatches(db.sql, (size) => batches.push(size));
  });
  after(async () => {
    await server.close();
    await db.drop();
  });

  test('one course: duplicates, cancels and waitlist moves racing; the database agrees with every answer', async () => {
    const course = await newCourse(server.client, { capacity: 60, waitlistCapacity: 40 });
    const batchesBefore = batches.length;
    // 300 students, 100 of them twice (the second time in capitals with spaces), all at once.
    const requests = Array.from({ length: 300 }, (_, i) => student(course, i, 'gc'));
    const repeats = requests.slice(0, 100).map((s) => ({ ...s, email: `  ${s.email.toUpperCase()} ` }));
    const answers = await Promise.all([...requests, ...repeats].map((body) => server.client.register(body)));
    const statuses = countBy(answers, (a) => a.status);
    assert.equal(statuses[201], 100, JSON.stringify(statuses));
    const rush = batches.slice(batchesBefore);
    assert.ok(rush.length < 400 / 4, `batched: ${rush.length} batches for 400 requests`);
    assert.ok(Math.max(...rush) > 1);

    // Each student has one registration, whatever the answer said (201 or 200 with it, or 409).
    const created = answers.filter((a) => a.status === 201).map((a) => a.body);
    const sameStudent = answers.filter((a) => a.status === 200).map((a) => a.body);
    for (const existing of sameStudent) assert.ok(created.some((c) => c.id === existing.id), 'a 200 answers an earlier registration');
    assert.deepEqual(created.filter((r) => r.status === 'waitlisted').map((r) => r.waitlistPosition).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));

    // Now cancels of enrolled and waitlisted students race with newcomers: seats go to the
    // waitlist first, in order, and positions close up.
    const enrolled = created.filter((r) => r.status === 'enrolled').slice(0, 15);
    const waitlisted = created.filter((r) => r.status === 'waitlisted').slice(5, 15);
    const moves = await Promise.all([
      ...[...enrolled, ...waitlisted].map((r) => server.client.admin('DELETE', `/registrations/${r.id}`)),
      ...Array.from({ length: 100 }, (_, i) => server.client.register(student(course, 1000 + i, 'late'))),
    ]);
    assert.ok(moves.every((a) => [200, 201, 409].includes(a.status)), JSON.stringify(countBy(moves, (a) => a.status)));
    const positions = await waitlistPositions(db.sql, course);
    assert.deepEqual(positions, Array.from({ length: positions.length }, (_, i) => i + 1));
    const [counts] = await db.sql<{ enrolled: number; waitlisted: number }[]>`SELECT enrolled, waitlisted FROM courses WHERE id = ${course}`;
    assert.equal(counts!.enrolled, 60, 'the seats freed were taken again');
    // Every registration change has its event, and its email job, once.
    const [events] = await db.sql<{ missing: number }[]>`
      SELECT count(*)::int AS missing FROM registrations r
      WHERE NOT EXISTS (SELECT 1 FROM registration_events e WHERE e.registration_id = r.id AND e.kind IN ('enrolled', 'waitlisted'))
        AND r.course_id = ${course}`;
    assert.equal(events!.missing, 0);
    await assertInvariants(db.sql);
  });

  test('a member that fails inside a batch fails alone: the others of its batch are registered', async () => {
    const course = await newCourse(server.client, { capacity: 100 });
    await db.sql.unsafe(`
      CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.name = 'Student poison' THEN RAISE EXCEPTION 'poisoned member'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_poison BEFORE INSERT ON registrations FOR EACH ROW EXECUTE FUNCTION refuse_poison();`);
    try {
      const batchesBefore = batches.length;
      const bodies = Array.from({ length: 60 }, (_, i) => student(course, i, 'ok'));
      bodies.splice(30, 0, { name: 'Student poison', email: 'poison@example.org', course });
      // Sent together, so the poison shares a batch with others.
      const answers = await Promise.all(bodies.map((body) => server.client.register(body)));
      const poison = answers[30]!;
      assert.equal(poison.status, 500);
      assert.doesNotMatch(JSON.stringify(poison.body), /poisoned member/, 'no SQL error in the answer');
      assert.deepEqual(countBy(answers.filter((_, i) => i !== 30), (a) => a.status), { 201: 60 });
      assert.ok(batches.slice(batchesBefore).some((size) => size > 1), 'the poison went in a batch with others');
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM registrations WHERE course_id = ${course}`;
      assert.equal(row!.n, 60);
      await assertInvariants(db.sql);
    } finally {
      await db.sql.unsafe('DROP TRIGGER refuse_poison ON registrations; DROP FUNCTION refuse_poison();');
    }
  });
});

describe('plans on a fresh term', () => {
  let db: TestDatabase;
  let server: TestServer;
  before(async () => {
    // Few connections, so each one's cached plans are used again and again.
    db = await createTestDatabase(2);
    server = await startTestServer(db.sql);
  });
  after(async () => {
    await server.close();
    await db.drop();
  });

  const GROWING = ['registrations', 'registration_events', 'manage_tokens', 'idempotency_keys'];

  type Reads = { seqScans: Record<string, number>; tuplesRead: number };

  /** Sequential scans of the growing tables, and the rows read from registrations however. */
  async function reads(): Promise<Reads> {
    // Backends report their counters when idle, at most once a second.
    await sleep(1_500);
    const rows = await db.sql<{ relname: string; seq_scan: number; tuples: number }[]>`
      SELECT relname, seq_scan::int, (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int AS tuples
      FROM pg_stat_user_tables WHERE relname = ANY (${GROWING})`;
    return {
      seqScans: Object.fromEntries(rows.map((r) => [r.relname, r.seq_scan])),
      tuplesRead: rows.find((r) => r.relname === 'registrations')!.tuples,
    };
  }

  test('plans made on emptied tables still use the indexes once the tables are large', async () => {
    // A new term: empty tables, their statistics say so, and autovacuum will not say otherwise.
    for (const table of GROWING) await db.sql.unsafe(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    await db.sql`ANALYZE`;
    const course = await newCourse(server.client, { capacity: 100_000, waitlistCapacity: 10 });
    // Plans are made and cached on the empty tables (plpgsql and prepared statements cache a
    // plan after a few runs).
    for (let round = 0; round < 15; round++) {
      await Promise.all(Array.from({ length: 4 }, (_, i) => server.client.register(student(course, round * 4 + i, 'warm'))));
      await server.client.register(student(course, round, 'key'), { 'idempotency-key': `warm-${round}` });
    }
    // The term fills up: 60,000 registrations, events and tokens (no ANALYZE).
    await db.sql`
      WITH r AS (
        INSERT INTO registrations (course_id, name, email, email_key, status)
        SELECT ${course}, 'Filler ' || n, 'filler' || n || '@example.org', 'filler' || n || '@example.org', 'enrolled'
        FROM generate_series(1, 60000) n RETURNING id
      ), e AS (
        INSERT INTO registration_events (registration_id, course_id, kind) SELECT id, ${course}, 'enrolled' FROM r
      )
      INSERT INTO manage_tokens (token_hash, registration_id) SELECT sha256(convert_to(id::text, 'UTF8')), id FROM r`;
    await db.sql`UPDATE courses SET enrolled = enrolled + 60000 WHERE id = ${course}`;
    await db.sql`INSERT INTO idempotency_keys (key_hash, request_hash) SELECT sha256(convert_to(n::text, 'UTF8')), '\\x00' FROM generate_series(1, 60000) n`;

    const before = await reads();
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => server.client.register(student(course, round * 20 + i, 'later'))));
      assert.deepEqual(countBy(answers, (a) => a.status), { 201: 20 });
      assert.equal((await server.client.register(student(course, round, 'keylater'), { 'idempotency-key': `later-${round}` })).status, 201);
    }
    const afterwards = await reads();
    assert.deepEqual(afterwards.seqScans, before.seqScans, 'no sequential scan of a large table on the registration path');
    // 210 registrations: a few index probes each, never a walk through the 60,000 rows.
    const perRegistration = (afterwards.tuplesRead - before.tuplesRead) / 210;
    assert.ok(perRegistration < 20, `rows of registrations read per registration: ${perRegistration}`);
    await assertInvariants(db.sql);
  });
});
