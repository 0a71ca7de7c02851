// A client that gives up and retries never gets a second registration, even when its first
// attempt commits after it gave up: the retry with the same Idempotency-Key gets 409 while the
// first is still running, then the first's own 201; without a key, the same email gets 200.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deleteExpiredIdempotencyKeys } from '../../src/jobs/housekeeping.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { newCourse } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';

let db: TestDatabase;
let server: TestServer;
before(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.sql);
  // Makes the registration of "Slow Student" take a second inside its transaction.
  await db.sql.unsafe(`
    CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.name LIKE 'Slow Student%' THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$;
    CREATE TRIGGER slow_commit AFTER INSERT ON registrations FOR EACH ROW EXECUTE FUNCTION slow_commit();`);
});
after(async () => {
  await server.close();
  await db.drop();
});

async function registerGivingUp(body: object, headers: Record<string, string>, afterMs: number): Promise<'gave up' | number> {
  try {
    const answer = await fetch(`${server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(afterMs) });
    return answer.status;
  } catch {
    return 'gave up';
  }
}

test('a retry with the same Idempotency-Key after a timeout: 409 while the first runs, then its 201; one registration', async () => {
  const course = await newCourse(server.client, { capacity: 5 });
  const body = { name: 'Slow Student', email: 'slow@example.org', course };
  const headers = { 'idempotency-key': `retry-${course}` };
  assert.equal(await registerGivingUp(body, headers, 200), 'gave up');
  const early = await server.client.register(body, headers);
  assert.equal(early.status, 409, 'the first attempt is still being handled');
  assert.equal(early.body.type, '/problems/conflict');
  let answer = early;
  for (let i = 0; i < 50 && answer.status === 409; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await server.client.register(body, headers);
  }
  assert.equal(answer.status, 201, 'the first attempt committed after the client gave up: its 201 is replayed');
  assert.equal(typeof answer.body.manageToken, 'string');
  const rows = await db.sql`SELECT id FROM registrations WHERE course_id = ${course}`;
  assert.deepEqual(rows.map((r) => r.id), [answer.body.id]);
});

test('a retry without a key after a timeout finds the same registration by email (200)', async () => {
  const course = await newCourse(server.client, { capacity: 5 });
  const body = { name: 'Slow Student 2', email: 'slow2@example.org', course };
  assert.equal(await registerGivingUp(body, {}, 200), 'gave up');
  let answer = await server.client.register(body);
  for (let i = 0; i < 50 && answer.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await server.client.register(body);
  }
  assert.equal(answer.status, 200);
  assert.equal('manageToken' in answer.body, false);
  const rows = await db.sql`SELECT id FROM registrations WHERE course_id = ${course}`;
  assert.deepEqual(rows.map((r) => r.id), [answer.body.id]);
});

test('keys are kept 48 hours, then deleted by housekeeping', async () => {
  const course = await newCourse(server.client, { capacity: 5 });
  assert.equal((await server.client.register({ name: 'Kept', email: 'kept@example.org', course }, { 'idempotency-key': `kept-${course}` })).status, 201);
  assert.equal((await server.client.register({ name: 'Old', email: 'old@example.org', course }, { 'idempotency-key': `old-${course}` })).status, 201);
  await db.sql`UPDATE idempotency_keys SET created_at = now() - interval '49 hours' WHERE created_at = (SELECT max(created_at) FROM idempotency_keys)`;
  await db.sql`UPDATE idempotency_keys SET created_at = now() - interval '47 hours' WHERE created_at > now() - interval '1 minute'`;
  const before_ = (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`)[0]!.n;
  assert.equal(await deleteExpiredIdempotencyKeys(db.sql), 1);
  assert.equal((await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`)[0]!.n, before_ - 1);
});
