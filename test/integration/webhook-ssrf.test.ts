// Webhooks cannot be aimed inside the network (SSRF): internal addresses are refused when the
// webhook is created and again at delivery, on the address actually connected to.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { isInternalAddress } from '../../src/jobs/webhooks/address-guard.ts';
import { createDeliverWebhookTask } from '../../src/jobs/tasks/deliver-webhook.task.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

let db: TestDatabase;
let strict: TestServer;
let receiver: WebhookReceiver;
before(async () => {
  db = await createTestDatabase();
  strict = await startTestServer(db.sql, { allowPrivateWebhooks: false });
  receiver = await startWebhookReceiver();
});
after(async () => {
  await receiver.close();
  await strict.close();
  await db.drop();
});

test('internal and public addresses are told apart', () => {
  for (const address of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
    assert.equal(isInternalAddress(address), true, address);
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isInternalAddress(address), false, address);
  }
});

test('creating a webhook for an internal address is refused with 400', async () => {
  for (const url of ['http://127.0.0.1:8080/hook', 'http://[::1]/hook', 'http://localhost/hook', 'https://10.0.0.5/hook', 'http://169.254.169.254/latest/meta-data']) {
    const answer = await strict.client.admin('POST', '/webhooks', { url, events: ['registration.created'] });
    assert.equal(answer.status, 400, url);
    assert.match(answer.body.detail, /internal address|WEBHOOK_ALLOW_PRIVATE|cannot be used/, url);
  }
  assert.equal((await strict.client.admin('GET', '/webhooks')).body.length, 0);
});

test('a delivery to an internal address is refused at connection time, and recorded as failed', async () => {
  // As if the webhook had been created while its name pointed elsewhere (DNS rebinding).
  const [hook] = await db.sql<{ id: string }[]>`INSERT INTO webhooks (url, events, secret) VALUES (${receiver.url.replace('127.0.0.1', 'localhost')}, ${['registration.created']}, 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0') RETURNING id`;
  const course = await newCourse(strict.client, { capacity: 5 });
  await strict.client.register(student(course, 1));
  const [delivery] = await db.sql<{ id: string }[]>`SELECT id FROM webhook_deliveries WHERE webhook_id = ${hook!.id}`;
  const task = createDeliverWebhookTask({ sql: db.sql, timeoutMs: 2_000, logger: pino({ level: 'silent' }), allowPrivate: false });
  await task({ deliveryId: delivery!.id }, { job: { id: '0', attempts: 12, max_attempts: 12 } } as never);
  const [row] = await db.sql<{ status: string; last_error: string }[]>`SELECT status, last_error FROM webhook_deliveries WHERE id = ${delivery!.id}`;
  assert.equal(row!.status, 'failed');
  assert.match(row!.last_error, /internal address/);
  assert.equal(receiver.received.length, 0);
});
