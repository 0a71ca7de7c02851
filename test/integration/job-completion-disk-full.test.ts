// A job whose completion PostgreSQL refuses for lack of disk (53100, raised here by a trigger on
// graphile-worker's job table, as a full disk refuses a write; the real full disk is
// test/e2e/disk-full.test.ts) is completed once the database takes writes again: the job worker
// waits and retries instead of losing the completion (an unhandled rejection that would end
// the process), and the email is sent once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { refuseWritesWithDiskFull, writesTried } from '../support/refused-writes.ts';
import { until } from '../support/rush.ts';
import { useStack } from '../support/stack.ts';

/** Completions refused before the database takes one. */
const REFUSED_WRITES = 2;

const stack = useStack();

test('a completion refused with disk_full is retried until it is written; the email goes once', { timeout: 120_000 }, async () => {
  await refuseWritesWithDiskFull(stack.db.sql, { table: 'graphile_worker._private_jobs', operation: 'DELETE', times: REFUSED_WRITES });
  const course = await newCourse(stack.server.client, { capacity: 5 });
  assert.equal((await stack.server.client.register(student(course, 1))).status, 201);
  await stack.startRunners(); // the built-in mailbox

  await until(() => stack.db.sql<{ jobs: number }[]>`SELECT count(*)::int AS jobs FROM graphile_worker._private_jobs`,
    (rows) => rows[0]!.jobs === 0, 'the job completed', 60_000, 100);
  const tried = await writesTried(stack.db.sql);
  assert.ok(tried > REFUSED_WRITES, `the first ${REFUSED_WRITES} completions were refused (${tried} tried)`);
  const [counts] = await stack.db.sql<{ mailbox: number; sent: number }[]>`
    SELECT (SELECT count(*) FROM mailbox)::int AS mailbox, (SELECT count(*) FROM email_deliveries WHERE status = 'sent')::int AS sent`;
  assert.deepEqual(counts, { mailbox: 1, sent: 1 });
});
