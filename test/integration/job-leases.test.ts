// Jobs held by a dead worker come back within seconds; jobs held by a live one are left alone;
// a live process's jobs carry its heartbeat; and a hung webhook receiver never delays an email.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { beatAndReap } from '../../src/jobs/lease-keeper.ts';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestJobRunners } from '../support/job-runners.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack();

test('the lease keeper unlocks the jobs of a worker with no heartbeat, and only those', async () => {
  const course = await newCourse(stack.server.client, { capacity: 5 });
  await stack.server.client.register(student(course, 1));
  await stack.server.client.register(student(course, 2));
  const jobs = await stack.db.sql<{ id: string }[]>`SELECT id::text FROM graphile_worker._private_jobs ORDER BY id`;
  assert.equal(jobs.length, 2);
  // One job held by a worker that died a minute ago, one by a live worker (fresh heartbeat).
  await stack.db.sql`UPDATE graphile_worker._private_jobs SET locked_by = 'worker-dead', locked_at = now() - interval '1 minute' WHERE id = ${jobs[0]!.id}`;
  await stack.db.sql`UPDATE graphile_worker._private_jobs SET locked_by = 'worker-alive', locked_at = now() - interval '1 minute' WHERE id = ${jobs[1]!.id}`;
  await stack.db.sql`INSERT INTO job_worker_heartbeats (worker_id, pid) VALUES ('worker-alive', 1)`;

  const unlocked = await beatAndReap(stack.db.sql, ['worker-me'], 8_000);
  assert.deepEqual(unlocked, ['worker-dead']);
  const after_ = await stack.db.sql<{ id: string; locked_by: string | null }[]>`SELECT id::text, locked_by FROM graphile_worker._private_jobs ORDER BY id`;
  assert.deepEqual(after_.map((j) => j.locked_by), [null, 'worker-alive']);
  const beats = await stack.db.sql`SELECT worker_id FROM job_worker_heartbeats ORDER BY worker_id`;
  assert.deepEqual(beats.map((b) => b.worker_id), ['worker-alive', 'worker-me']);
  await stack.db.sql`DELETE FROM graphile_worker._private_jobs`;
});

test('a webhook receiver that hangs never delays the emails', async () => {
  const hung = createServer(() => {}); // accepts, never answers
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/hook`;
  let runners: JobRunners | undefined;
  try {
    await stack.server.client.admin('POST', '/webhooks', { url, events: ['registration.created'] });
    const course = await newCourse(stack.server.client, { capacity: 40 });
    // One at a time: each registration its own batch, so its own webhook job: more webhook jobs
    // than the webhook slots (4 in the test runners).
    for (let i = 0; i < 6; i++) assert.equal((await stack.server.client.register(student(course, i, 'first'))).status, 201);
    // A timeout longer than the test: the hung deliveries hold their slots until the receiver's
    // connections are closed at the end, however slow the machine (with a short one, a slot
    // freed by a timeout would be taken by the next delivery and the count below could dip).
    runners = await startTestJobRunners(stack.db, { webhookTimeoutMs: 300_000 });
    const stuckWebhooks = async () => {
      const [row] = await stack.db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
        WHERE t.identifier = 'deliver_webhook' AND j.locked_by IS NOT NULL`;
      return row!.n;
    };
    let deadline = Date.now() + 60_000;
    while ((await stuckWebhooks()) < 4) {
      assert.ok(Date.now() < deadline, 'the webhook slots never filled up');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Every webhook slot now holds a delivery stuck on the hung receiver. Twelve more students:
    // their emails land while the slots stay stuck.
    for (let i = 0; i < 12; i++) assert.equal((await stack.server.client.register(student(course, i, 'hung'))).status, 201);
    deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await stack.db.sql<{ mails: number }[]>`SELECT count(*)::int AS mails FROM mailbox WHERE recipient LIKE 'hung%'`;
      if (row!.mails === 12) {
        assert.equal(await stuckWebhooks(), 4, 'every webhook slot is still taken by a hung delivery');
        break;
      }
      assert.ok(Date.now() < deadline, `only ${row!.mails} of 12 emails arrived`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The stuck jobs are a live process's: its heartbeat names whoever graphile-worker locked them
    // for (the worker pool, in 0.17), so the lease keeper leaves them alone.
    for (;;) {
      const [row] = await stack.db.sql<{ held: number; orphaned: number }[]>`
        SELECT count(*)::int AS held,
               count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM job_worker_heartbeats h WHERE h.worker_id = j.locked_by))::int AS orphaned
        FROM graphile_worker._private_jobs j WHERE j.locked_by IS NOT NULL`;
      if (row!.held > 0 && row!.orphaned === 0) break;
      assert.ok(Date.now() < deadline, `${row!.orphaned} of ${row!.held} locked jobs have no heartbeat under their locked_by`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await stack.db.sql`DELETE FROM webhooks`;
    hung.closeAllConnections();
    hung.close();
    await runners?.stop();
  }
});
