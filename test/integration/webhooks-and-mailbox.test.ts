// Webhooks verified by the receiver's own Standard Webhooks check, delivered once through
// receiver errors; and the built-in mailbox, which keeps every email when no SMTP server is set.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import type { TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer, type TestServer } from '../support/http.ts';
import { type MailboxStack, startMailboxStack } from '../support/mailbox-stack.ts';
import type { WebhookReceiver } from '../support/webhook-receiver.ts';

let stack: MailboxStack;
let db: TestDatabase;
let server: TestServer;
let runners: JobRunners;
let receiver: WebhookReceiver;

before(async () => {
  stack = await startMailboxStack();
  ({ db, server, runners, receiver } = stack);
});
after(async () => {
  await stack.stop();
});

describe('webhooks', () => {
  test('created, promoted and cancelled events arrive signed, verified by the receiver, once each after a 500', async () => {
    const created = await server.client.admin('POST', '/webhooks', { url: receiver.url, events: ['registration.created', 'registration.promoted', 'registration.cancelled'] });
    assert.equal(created.status, 201);
    assert.match(created.body.secret, /^whsec_/);
    receiver.setSecret(created.body.secret);
    receiver.failFirst = [500];

    const course = await newCourse(server.client, { capacity: 1, waitlistCapacity: 1 });
    const ada = (await server.client.register(student(course, 1))).body;
    const bob = (await server.client.register(student(course, 2))).body;
    await server.client.request('DELETE', `/registrations/${ada.id}`, { token: ada.manageToken });

    // created x2, cancelled, promoted: each answered 500 once, then 200.
    const accepted = await eventually(async () => receiver.received.filter((r) => r.answeredStatus === 200), (list) => list.length >= 4);
    assert.equal(accepted.length, 4);
    assert.ok(receiver.received.every((r) => r.verified), `every delivery carries a valid signature: ${JSON.stringify(receiver.received.map((r) => [r.id, r.type, r.verified, r.answeredStatus]))}`);
    assert.deepEqual(accepted.map((r) => r.type).sort(), ['registration.cancelled', 'registration.created', 'registration.created', 'registration.promoted']);
    assert.equal(new Set(accepted.map((r) => r.id)).size, 4, 'one webhook-id per event');
    const promoted = accepted.find((r) => r.type === 'registration.promoted')!;
    assert.equal(promoted.body.data.registration.id, bob.id);
    assert.equal(promoted.body.data.registration.status, 'enrolled');
    // Each event was tried twice (500, then 200), with the same webhook-id.
    for (const r of accepted) assert.equal(receiver.received.filter((x) => x.id === r.id).length, 2);

    const log = (await server.client.admin('GET', `/webhooks/${created.body.id}/deliveries`)).body;
    assert.equal(log.length, 4);
    assert.ok(log.every((d: { status: string; attempts: number; lastStatusCode: number }) => d.status === 'delivered' && d.attempts === 2 && d.lastStatusCode === 200));

    assert.equal((await server.client.admin('DELETE', `/webhooks/${created.body.id}`)).status, 204);
    assert.equal((await server.client.admin('GET', '/webhooks')).body.length, 0);
    receiver.failFirst = [];
  });

  test('only http and https URLs are accepted', async () => {
    for (const url of ['ftp://example.org/hook', 'file:///etc/passwd', 'javascript:alert(1)', 'http://user:pass@example.org/']) {
      const answer = await server.client.admin('POST', '/webhooks', { url, events: ['registration.created'] });
      assert.equal(answer.status, 400, url);
    }
    assert.equal((await server.client.admin('GET', '/webhooks')).body.length, 0);
  });

  test('a registration refused as full produces no webhook', async () => {
    const hook = (await server.client.admin('POST', '/webhooks', { url: receiver.url, events: ['registration.created'] })).body;
    const course = await newCourse(server.client, { capacity: 0 });
    assert.equal((await server.client.register(student(course, 9))).status, 409);
    const rows = await db.sql`SELECT 1 FROM webhook_deliveries WHERE webhook_id = ${hook.id}`;
    assert.equal(rows.length, 0);
    await server.client.admin('DELETE', `/webhooks/${hook.id}`);
  });
});

describe('the built-in mailbox', () => {
  test('keeps each email once, newest first, filtered by recipient, and still has them after a restart', async () => {
    const course = await newCourse(server.client, { capacity: 2, waitlistCapacity: 2 });
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => server.client.register(student(course, i, 'box'))));
    assert.ok(answers.every((a) => a.status === 201));
    const emails = answers.map((a) => a.body.email as string);
    type Mail = { id: string; to: string; subject: string; text: string; html: string };
    const inbox = await eventually(
      async (): Promise<Mail[]> => (await server.client.admin('GET', '/admin/mail?limit=500')).body.items.filter((m: Mail) => emails.includes(m.to)),
      (items) => items.length >= 4,
    );
    assert.equal(inbox.length, 4);
    const ids = inbox.map((m) => Number(m.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
    for (const message of inbox) {
      assert.match(message.subject, /enrolled|waitlist/);
      assert.match(message.text, /\/manage\//);
      assert.match(message.html, /<a href=/);
    }
    const one = await server.client.admin('GET', `/admin/mail?to=${encodeURIComponent(emails[0]!.toUpperCase())}`);
    assert.equal(one.body.items.length, 1);
    // Paging: one at a time, by the cursor.
    const first = (await server.client.admin('GET', '/admin/mail?limit=1')).body;
    const second = (await server.client.admin('GET', `/admin/mail?limit=1&after=${first.next}`)).body;
    assert.ok(Number(second.items[0].id) < Number(first.items[0].id));

    // A restart: a new server process on the same database reads the same mailbox.
    await server.close();
    server = stack.server = await startTestServer(db.sql);
    const again = await server.client.admin('GET', `/admin/mail?to=${encodeURIComponent(emails[0]!)}`);
    assert.deepEqual(again.body.items.map((m: { id: string }) => m.id), one.body.items.map((m: { id: string }) => m.id));
    assert.equal((await server.client.request('GET', '/admin/mail')).status, 401);
  });

  test('the manage page is served with a strict Content-Security-Policy', async () => {
    const page = await server.client.request('GET', '/manage/00000000-0000-4000-8000-000000000000');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(String(page.body), /manage\.js/);
  });
});
