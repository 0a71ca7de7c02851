// A webhook the receiver accepted while the database cannot write (a full disk: 53100, raised
// here by a trigger on the delivery's record, as PostgreSQL raises it when a page cannot be
// added; the real full disk is test/e2e/disk-full.test.ts) is recorded once the database takes
// writes again, and is not posted a second time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { refuseWritesWithDiskFull, writesTried } from '../support/refused-writes.ts';
import { until } from '../support/rush.ts';
import { useStack } from '../support/stack.ts';

/** Writes of a delivery's outcome refused before the database takes them. */
const REFUSED_WRITES = 3;

const stack = useStack({ receiver: true });

test('a delivery accepted while the disk is full is recorded when it has room, and posted once', { timeout: 120_000 }, async () => {
  const hook = (await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['registration.created'] })).body;
  stack.receiver.setSecret(hook.secret);
  await refuseWritesWithDiskFull(stack.db.sql, { table: 'webhook_deliveries', operation: 'UPDATE', times: REFUSED_WRITES });
  const course = await newCourse(stack.server.client, { capacity: 5 });
  assert.equal((await stack.server.client.register(student(course, 1))).status, 201);
  await stack.startRunners({ webhookTimeoutMs: 10_000 });

  const [delivery] = await until(() => stack.db.sql<{ status: string; attempts: number }[]>`SELECT status, attempts FROM webhook_deliveries`,
    (rows) => rows.length === 1 && rows[0]!.status === 'delivered', 'the delivery recorded as delivered', 60_000, 100);
  const tried = await writesTried(stack.db.sql);
  assert.ok(tried > REFUSED_WRITES, `the first ${REFUSED_WRITES} writes were refused (${tried} tried)`);
  assert.deepEqual(stack.receiver.received.map((r) => r.answeredStatus), [200], 'posted once, accepted');
  assert.equal(delivery!.attempts, 1);
  assert.ok(stack.receiver.received[0]!.verified);
});
