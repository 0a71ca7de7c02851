// Webhooks verified by the receiver's own Standard Webhooks check, delivered once through
// receiver errors; and the built-in mailbox, which keeps every email when no SMTP server is set.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { startTestServer } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ receiver: true, runners: {} }); // the built-in mailbox

describe('webhooks', () => {
  test('created, promoted and cancelled events arrive signed, verified by the receiver, once each after a 500', async () => {
    const created = await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['registration.created', 'registration.promoted', 'registration.cancelled'] });
    assert.equal(created.status, 201);
    assert.match(created.body.secret, /^whsec_/);
    stack.receiver.setSecret(created.body.secret);
    stack.receiver.failFirst = [500];

    const course = await newCourse(stack.server.client, { capacity: 1, waitlistCapacity: 1 });
    const ada = (await stack.server.client.register(student(course, 1))).body;
    const bob = (await stack.server.client.register(student(course, 2))).body;
    await stack.server.client.request('DELETE', `/registrations/${ada.id}`, { token: ada.manageToken });

    // created x2, cancelled, promoted: each answered 500 once, then 200.
    const accepted = await eventually(async () => stack.receiver.received.filter((r) => r.answeredStatus === 200), (list) => list.length >= 4);
    assert.equal(accepted.length, 4);
    assert.ok(stack.receiver.received.every((r) => r.verified), `every delivery carries a valid signature: ${JSON.stringify(stack.receiver.received.map((r) => [r.id, r.type, r.verified, r.answeredStatus]))}`);
    assert.deepEqual(accepted.map((r) => r.type).sort(), ['registration.cancelled', 'registration.created', 'registration.created', 'registration.promoted']);
    assert.equal(new Set(accepted.map((r) => r.id)).size, 4, 'one webhook-id per event');
    const promoted = accepted.find((r) => r.type === 'registration.promoted')!;
    assert.equal(promoted.body.data.registration.id, bob.id);
    assert.equal(promoted.body.data.registration.status, 'enrolled');
    // Each event was tried twice (500, then 200), with the same webhook-id.
    for (const r of accepted) assert.equal(stack.receiver.received.filter((x) => x.id === r.id).length, 2);

    const log = (await stack.server.client.admin('GET', `/webhooks/${created.body.id}/deliveries`)).body;
    assert.equal(log.length, 4);
    assert.ok(log.every((d: { status: string; attempts: number; lastStatusCode: number }) => d.status === 'delivered' && d.attempts === 2 && d.lastStatusCode === 200));

    assert.equal((await stack.server.client.admin('DELETE', `/webhooks/${created.body.id}`)).status, 204);
    assert.equal((await stack.server.client.admin('GET', '/webhooks')).body.length, 0);
    stack.receiver.failFirst = [];
  });

  test('only http and https URLs are accepted', async () => {
    for (const url of ['ftp://example.org/hook', 'file:///etc/passwd', 'javascript:alert(1)', 'http://user:pass@example.org/']) {
      const answer = await stack.server.client.admin('POST', '/webhooks', { url, events: ['registration.created'] });
      assert.equal(answer.status, 400, url);
    }
    assert.equal((await stack.server.client.admin('GET', '/webhooks')).body.length, 0);
  });

  test('a registration refused as full produces no webhook', async () => {
    const hook = (await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['registration.created'] })).body;
    const course = await newCourse(stack.server.client, { capacity: 0 });
    assert.equal((await stack.server.client.register(student(course, 9))).status, 409);
    const rows = await stack.db.sql`SELECT 1 FROM webhook_deliveries WHERE webhook_id = ${hook.id}`;
    assert.equal(rows.length, 0);
    await stack.server.client.admin('DELETE', `/webhooks/${hook.id}`);
  });
});

describe('the built-in mailbox', () => {
  test('keeps each email once, newest first, filtered by recipient, and still has them after a restart', async () => {
    const course = await newCourse(stack.server.client, { capacity: 2, waitlistCapacity: 2 });
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => stack.server.client.register(student(course, i, 'box'))));
    assert.ok(answers.every((a) => a.status === 201));
    const emails = answers.map((a) => a.body.email as string);
    type Mail = { id: string; to: string; subject: string; text: string; html: string };
    const inbox = await eventually(
      async (): Promise<Mail[]> => (await stack.server.client.admin('GET', '/admin/mail?limit=500')).body.items.filter((m: Mail) => emails.includes(m.to)),
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
    const one = await stack.server.client.admin('GET', `/admin/mail?to=${encodeURIComponent(emails[0]!.toUpperCase())}`);
    assert.equal(one.body.items.length, 1);
    // Paging: one at a time, by the cursor.
    const first = (await stack.server.client.admin('GET', '/admin/mail?limit=1')).body;
    const second = (await stack.server.client.admin('GET', `/admin/mail?limit=1&after=${first.next}`)).body;
    assert.ok(Number(second.items[0].id) < Number(first.items[0].id));

    // A restart: a new server process on the same database reads the same mailbox.
    await stack.server.close();
    stack.server = await startTestServer(stack.db.sql);
    const again = await stack.server.client.admin('GET', `/admin/mail?to=${encodeURIComponent(emails[0]!)}`);
    assert.deepEqual(again.body.items.map((m: { id: string }) => m.id), one.body.items.map((m: { id: string }) => m.id));
    assert.equal((await stack.server.client.request('GET', '/admin/mail')).status, 401);
  });

  test('the manage page is served with a strict Content-Security-Policy', async () => {
    const page = await stack.server.client.request('GET', '/manage/00000000-0000-4000-8000-000000000000');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(String(page.body), /manage\.js/);
  });
});
