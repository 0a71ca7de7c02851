// Webhook delivery's bounds: webhooks cannot be aimed inside the network (SSRF), internal
// addresses being refused when the webhook is created and again at delivery, on the address
// actually connected to; and a job of hundreds of deliveries keeps to WEBHOOK_CONCURRENCY.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { isInternalAddress } from '../../src/security/address-guard.ts';
import { createLimiter } from '../../src/jobs/job-entries.ts';
import { createDeliverWebhookTask } from '../../src/jobs/tasks/deliver-webhook.task.ts';
import { newCourse, student } from '../support/factories.ts';
import { useStack } from '../support/stack.ts';

// A server as production runs it: webhooks to internal addresses refused.
const stack = useStack({ server: { allowPrivateWebhooks: false }, receiver: true });

test('internal and public addresses are told apart', () => {
  for (const address of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
    assert.equal(isInternalAddress(address), true, address);
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isInternalAddress(address), false, address);
  }
});

test('IPv6 addresses that carry an internal IPv4 address (NAT64, 6to4, Teredo, mapped, compatible) are internal; with a public one they are not', () => {
  for (const address of [
    '64:ff9b::7f00:1', '64:ff9b::127.0.0.1', '64:ff9b::a00:1', '64:ff9b::a9fe:a9fe', // NAT64 (RFC 6052) to 127.0.0.1, 10.0.0.1, 169.254.169.254
    '64:ff9b:1::808:808', '64:ff9b:1:abcd::1', // local-use NAT64 (RFC 8215): the network's own translator
    '::ffff:7f00:1', '::ffff:0:7f00:1', '::127.0.0.1', '::a00:1', // mapped (hex form), SIIT, compatible
    '2002:7f00:1::1', '2002:c0a8:101::1', // 6to4 of 127.0.0.1 and 192.168.1.1
    '2001:0:a00:1::1', '2001:0:808:808::80ff:fefe', // Teredo: server 10.0.0.1; client 127.0.1.1 (inverted)
    'fec0::1',
  ]) {
    assert.equal(isInternalAddress(address), true, address);
  }
  for (const address of ['64:ff9b::808:808', '64:ff9b::8.8.8.8', '2002:808:808::1', '2001:0:808:808::f7f7:f7f7', '2001:db9::1']) {
    assert.equal(isInternalAddress(address), false, address);
  }
});

test('creating a webhook for a NAT64 or 6to4 address of an internal one is refused with 400', async () => {
  for (const url of ['http://[64:ff9b::7f00:1]:8080/hook', 'http://[64:ff9b::a9fe:a9fe]/latest/meta-data', 'http://[::ffff:7f00:1]/hook', 'http://[2002:7f00:1::1]/hook', 'http://[64:ff9b:1::a00:1]/hook']) {
    const answer = await stack.server.client.admin('POST', '/webhooks', { url, events: ['registration.created'] });
    assert.equal(answer.status, 400, `${url}: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.match(answer.body.detail, /internal address/, url);
  }
  assert.equal((await stack.server.client.admin('GET', '/webhooks')).body.length, 0);
});

test('creating a webhook for an internal address is refused with 400', async () => {
  for (const url of ['http://127.0.0.1:8080/hook', 'http://[::1]/hook', 'http://localhost/hook', 'https://10.0.0.5/hook', 'http://169.254.169.254/latest/meta-data']) {
    const answer = await stack.server.client.admin('POST', '/webhooks', { url, events: ['registration.created'] });
    assert.equal(answer.status, 400, url);
    assert.match(answer.body.detail, /internal address|WEBHOOK_ALLOW_PRIVATE|cannot be used/, url);
  }
  assert.equal((await stack.server.client.admin('GET', '/webhooks')).body.length, 0);
});

test('a delivery to an internal address is refused at connection time, and recorded as failed at once, without retries', async () => {
  // As if the webhook had been created while its name pointed elsewhere (DNS rebinding).
  const [hook] = await stack.db.sql<{ id: string }[]>`INSERT INTO webhooks (url, events, secret) VALUES (${stack.receiver.url.replace('127.0.0.1', 'localhost')}, ${['registration.created']}, 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0') RETURNING id`;
  const course = await newCourse(stack.server.client, { capacity: 5 });
  await stack.server.client.register(student(course, 1));
  const [delivery] = await stack.db.sql<{ id: string }[]>`SELECT id FROM webhook_deliveries WHERE webhook_id = ${hook!.id}`;
  const task = createDeliverWebhookTask({ sql: stack.db.sql, timeoutMs: 2_000, logger: pino({ level: 'silent' }), allowPrivate: false, limit: createLimiter(1) });
  // The first of 12 attempts: the task completes (no retry is asked for), the delivery failed for good.
  await task({ deliveryId: delivery!.id }, { job: { id: '0', attempts: 1, max_attempts: 12 } } as never);
  const [row] = await stack.db.sql<{ status: string; last_error: string }[]>`SELECT status, last_error FROM webhook_deliveries WHERE id = ${delivery!.id}`;
  assert.equal(row!.status, 'failed');
  assert.match(row!.last_error, /internal address/);
  assert.equal(stack.receiver.received.length, 0);
});

test('a job holding many deliveries sends at most WEBHOOK_CONCURRENCY at once, each once', async () => {
  const [hook] = await stack.db.sql<{ id: string }[]>`INSERT INTO webhooks (url, events, secret) VALUES (${stack.receiver.url}, ${['registration.created']}, 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0') RETURNING id`;
  const course = await newCourse(stack.server.client, { capacity: 40 });
  // At once: a few group commits, each of whose webhook job holds many deliveries.
  await Promise.all(Array.from({ length: 30 }, (_, i) => stack.server.client.register(student(course, i, 'bound'))));
  const deliveries = await stack.db.sql<{ id: string }[]>`SELECT id FROM webhook_deliveries WHERE webhook_id = ${hook!.id}`;
  assert.equal(deliveries.length, 30);
  const before_ = stack.receiver.received.length;
  stack.receiver.delayMs = 50;
  try {
    const task = createDeliverWebhookTask({ sql: stack.db.sql, timeoutMs: 5_000, logger: pino({ level: 'silent' }), allowPrivate: true, limit: createLimiter(3) });
    // One job with all 30 entries, as a group commit of 30 writes it.
    const results = await task(deliveries.map((d) => ({ deliveryId: d.id })), { job: { id: '0', attempts: 1, max_attempts: 12 } } as never);
    await Promise.all(results as Promise<unknown>[]);
  } finally {
    stack.receiver.delayMs = 0;
  }
  assert.equal(stack.receiver.received.length - before_, 30);
  assert.equal(new Set(stack.receiver.received.slice(before_).map((r) => r.id)).size, 30, 'each delivery once');
  assert.ok(stack.receiver.peakInFlight <= 3 && stack.receiver.peakInFlight >= 2, `peak ${stack.receiver.peakInFlight} requests at once`);
  const [pending] = await stack.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = ${hook!.id} AND status <> 'delivered'`;
  assert.equal(pending!.n, 0);
});
