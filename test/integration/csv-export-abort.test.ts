// CSV exports whose client goes away: each must end its cursor and give its database connection
// back. With a pool of 2, downloads dropped at random points over a real socket, then every
// route that needs a connection still answers and the service's connections are idle.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import postgres from 'postgres';
import { registerBatch } from '../../src/db/queries/registrations.queries.ts';
import { normalizeStudent } from '../../src/domain/registration.ts';
import { generateManageToken } from '../../src/security/tokens.ts';
import { newCourse, student } from '../support/factories.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

const ROWS = 4000;

let observer: postgres.Sql;
let course: string;

const stack = useStack({ poolSize: 2 }, async (stack) => {
  observer = postgres(stack.db.url, { max: 1, onnotice: () => {}, connection: { application_name: 'registrar-test-observer' } });
  stack.onStop('end the observer connection', () => observer.end({ timeout: 5 }));
  course = await newCourse(stack.server.client, { capacity: ROWS + 10 });
  // Long names, so the export is a few hundred kilobytes: many cursor batches, many socket writes.
  for (let start = 0; start < ROWS; start += 250) {
    const batch = Array.from({ length: 250 }, (_, i) => {
      const student = normalizeStudent({ name: `Student ${start + i} ${'x'.repeat(80)}`, email: `export${start + i}@example.org` });
      return { courseId: course, ...student, manageToken: generateManageToken(), idempotency: null };
    });
    await registerBatch(stack.db.sql, batch);
  }
});

/** Downloads the export and drops the connection once `cut` bytes of the body have arrived. */
function dropAfter(cut: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${stack.server.url}/courses/${course}/registrations.csv`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`export answered ${response.statusCode}`));
      let received = 0;
      const drop = () => {
        request.destroy();
        resolve(received);
      };
      if (cut === 0) return drop();
      response.on('data', (data: Buffer) => {
        received += data.length;
        if (received >= cut) drop();
      });
      response.on('end', () => resolve(received));
      response.on('error', () => resolve(received));
    });
    request.on('error', (error) => {
      // Ours once dropped; before that, the service gave up on the request (no connection for it?).
      if (!request.destroyed) reject(new Error(`an export failed before its drop: ${error.message}`));
    });
  });
}

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s (a connection held by a dropped export?)`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

test('50 exports dropped at random points give back every connection; every route still answers', async () => {
  const whole = await stack.server.client.admin('GET', `/courses/${course}/registrations.csv`);
  const size = (whole.body as string).length;
  assert.ok(size > 300_000, `the export is ${size} bytes: too small to stream over many chunks`);
  // 50 drops, 5 at a time (more than the pool's 2 connections), from before the first byte to
  // just before the end.
  const cuts = Array.from({ length: 50 }, (_, i) => (i % 10 === 0 ? 0 : 1 + Math.floor(Math.random() * (size - 1))));
  for (let i = 0; i < cuts.length; i += 5) await within(120_000, 'dropped downloads', Promise.all(cuts.slice(i, i + 5).map(dropAfter)));

  // Every connection of the service goes back to idle: no cursor left open on it.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const busy = await observer<{ state: string; query: string }[]>`
      SELECT state, query FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'registrar-test' AND state <> 'idle'`;
    if (busy.length === 0) break;
    assert.ok(Date.now() < deadline, `connections still busy after the drops: ${JSON.stringify(busy)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // Concurrent requests that each need a connection all succeed.
  const answers = await within(60_000, 'requests after the drops', Promise.all([
    ...Array.from({ length: 6 }, () => stack.server.client.admin('GET', `/courses/${course}/registrations?limit=5`)),
    stack.server.client.request('GET', '/health'),
    stack.server.client.register(student(course, 1, 'after-drops')),
    stack.server.client.admin('GET', `/courses/${course}/registrations.csv`),
  ]));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200, 200, 201, 200]);
  // The new registration raced the export: it is in it or not; every earlier row is.
  assert.ok([ROWS + 2, ROWS + 3].includes((answers.at(-1)!.body as string).split('\n').length), 'the last export has every row');
});

test('an export whose query fails mid-stream ends its response and gives its connection back', async () => {
  const failing = await newCourse(stack.server.client, { capacity: 3000 });
  for (let start = 0; start < 3000; start += 250) {
    const batch = Array.from({ length: 250 }, (_, i) => {
      const n = start + i;
      const student = normalizeStudent({ name: n === 2500 ? 'Boom Student' : `Student ${n} ${'x'.repeat(80)}`, email: `failing${n}@example.org` });
      return { courseId: failing, ...student, manageToken: generateManageToken(), idempotency: null };
    });
    await registerBatch(stack.db.sql, batch);
  }
  // This test's own database: reading row 2501 now raises, after five batches of the cursor.
  await observer.unsafe(`
    CREATE OR REPLACE FUNCTION registrar_registration_row(r registrations, p_position bigint) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      IF r.name = 'Boom Student' THEN RAISE EXCEPTION 'this row cannot be read'; END IF;
      RETURN jsonb_build_object('id', r.id, 'course_id', r.course_id, 'name', r.name, 'email', r.email,
        'status', r.status, 'waitlist_position', p_position, 'created_at', r.created_at);
    END $$`);
  // And rows are read in index order, each projected as the cursor reaches it (no sort that would
  // project them all before the first batch): set for new connections, so the service's are renewed.
  const [{ name } = { name: '' }] = await observer<{ name: string }[]>`SELECT current_database() AS name`;
  await observer.unsafe(`ALTER DATABASE "${name}" SET enable_seqscan = off`);
  await observer.unsafe(`ALTER DATABASE "${name}" SET enable_bitmapscan = off`);
  await observer`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'registrar-test'`;
  await new Promise((resolve) => setTimeout(resolve, 500));

  const outcome = within(60_000, 'the failing export', new Promise<{ complete: boolean; received: number }>((resolve, reject) => {
    const request = http.get(`${stack.server.url}/courses/${failing}/registrations.csv`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }, (response) => {
      let received = 0;
      response.on('data', (data: Buffer) => {
        received += data.length;
      });
      response.on('error', () => {});
      response.on('close', () => resolve({ complete: response.complete, received }));
    });
    request.on('error', (error) => reject(error));
  }));
  const { complete, received } = await outcome;
  assert.equal(complete, false, 'a failed export must not look complete');
  assert.ok(received > 0, 'the export failed mid-stream, after its first rows');

  const answers = await within(60_000, 'requests after the failed export', Promise.all([
    ...Array.from({ length: 4 }, () => stack.server.client.admin('GET', `/courses/${course}/registrations?limit=5`)),
    stack.server.client.request('GET', '/health'),
    stack.server.client.register(student(course, 2, 'after-failure')),
  ]));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 201]);
});
