// A duplicate registration shows nothing stored: the 200 names only what the caller sent, and
// the student hears of it by a reminder email (a fresh manage link), at most once per 10 minutes
// per registration, decided in the database; no webhook for it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { newCourse } from '../support/factories.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ receiver: true, runners: {} }); // the built-in mailbox

async function reminders(registrationId: string): Promise<string[]> {
  const rows = await stack.db.sql<{ id: string }[]>`
    SELECT id::text FROM registration_events WHERE registration_id = ${registrationId} AND kind = 'reminder' ORDER BY id`;
  return rows.map((row) => row.id);
}

function burst(course: string, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) =>
    stack.server.client.register({ name: `Mallory ${i}`, email: i % 2 ? 'ADA.L@example.ORG' : 'ada.l@example.org', course })));
}

test('a duplicate answers 200 with only course, email and alreadyRegistered; one reminder for a burst, none within 10 minutes', async () => {
  const hook = await stack.server.client.admin('POST', '/webhooks', { url: stack.receiver.url, events: ['registration.created', 'registration.promoted', 'registration.cancelled'] });
  assert.equal(hook.status, 201);
  stack.receiver.setSecret(hook.body.secret);
  const course = await newCourse(stack.server.client, { capacity: 5, title: 'Analytical Engines' });
  const ada = await stack.server.client.register({ name: 'Ada Lovelace', email: 'Ada.L@Example.org', course });
  assert.equal(ada.status, 201);

  const answers = await burst(course, 20);
  for (const [i, answer] of answers.entries()) {
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(Object.keys(answer.body).sort(), ['alreadyRegistered', 'course', 'email']);
    assert.deepEqual(answer.body, { course, email: i % 2 ? 'ADA.L@example.ORG' : 'ada.l@example.org', alreadyRegistered: true });
  }
  const rows = await stack.db.sql<{ id: string; name: string }[]>`SELECT id, name FROM registrations WHERE course_id = ${course}`;
  assert.deepEqual(rows.map((r) => ({ ...r })), [{ id: ada.body.id, name: 'Ada Lovelace' }], 'no second row, nothing changed');

  // Committed before the 200s were sent: one reminder for the whole burst.
  const [reminder] = await reminders(ada.body.id);
  assert.deepEqual(await reminders(ada.body.id), [reminder]);
  const mail = await eventually(async () => stack.db.sql<{ recipient: string; subject: string; text_body: string; html_body: string }[]>`
    SELECT recipient, subject, text_body, html_body FROM mailbox WHERE event_id = ${reminder!}`, (found) => found.length === 1);
  assert.equal(mail[0]!.recipient, 'Ada.L@Example.org', 'to the stored address of that registration');
  assert.match(mail[0]!.subject, /already registered/);
  assert.match(mail[0]!.text_body, /Someone \(maybe you\) tried to register/);
  assert.match(mail[0]!.html_body, /Someone \(maybe you\) tried to register/);
  const token = decodeURIComponent(/#token=([^\s"&]+)/.exec(mail[0]!.text_body)![1]!);
  assert.ok(mail[0]!.html_body.includes(`/manage/${ada.body.id}#token=`));
  assert.notEqual(token, ada.body.manageToken, 'a fresh token');

  // The reminder's token manages the registration; the original one still does.
  for (const credential of [token, ada.body.manageToken]) {
    const shown = await stack.server.client.request('GET', `/registrations/${ada.body.id}`, { token: credential });
    assert.equal(shown.status, 200);
    assert.equal(shown.body.id, ada.body.id);
  }

  // A second burst within 10 minutes: 200s, no reminder.
  assert.ok((await burst(course, 20)).every((a) => a.status === 200));
  assert.deepEqual(await reminders(ada.body.id), [reminder]);

  // The 10 minutes, by the clock of the database: just inside, none; just past, one more.
  await stack.db.sql`UPDATE registrations SET reminded_at = now() - interval '9 minutes 50 seconds' WHERE id = ${ada.body.id}`;
  assert.equal((await stack.server.client.register({ name: 'Mallory', email: 'ada.l@example.org', course })).status, 200);
  assert.equal((await reminders(ada.body.id)).length, 1);
  await stack.db.sql`UPDATE registrations SET reminded_at = now() - interval '10 minutes 1 second' WHERE id = ${ada.body.id}`;
  assert.ok((await burst(course, 20)).every((a) => a.status === 200));
  assert.equal((await reminders(ada.body.id)).length, 2);

  // No webhook for a reminder: the registration did not change.
  const deliveries = await stack.db.sql`
    SELECT d.id FROM webhook_deliveries d JOIN registration_events e ON e.id = d.event_id WHERE e.kind = 'reminder'`;
  assert.equal(deliveries.length, 0);
  await eventually(async () => stack.receiver.received.filter((r) => r.answeredStatus === 200 && r.body.data.registration.id === ada.body.id).length, (n) => n === 1);
  const types = stack.receiver.received.filter((r) => r.body.data.registration.id === ada.body.id).map((r) => r.type);
  assert.deepEqual(types, ['registration.created']);
});

test('a duplicate with an Idempotency-Key: 200, and its replay the same 200 without a second reminder', async () => {
  const course = await newCourse(stack.server.client, { capacity: 5 });
  const bob = await stack.server.client.register({ name: 'Bob', email: 'bob@example.org', course }, { 'idempotency-key': `bob-${course}` });
  assert.equal(bob.status, 201);
  const headers = { 'idempotency-key': `dup-${course}` };
  const duplicate = await stack.server.client.register({ name: 'Bob', email: 'bob@example.org', course }, headers);
  assert.equal(duplicate.status, 200);
  assert.deepEqual(duplicate.body, { course, email: 'bob@example.org', alreadyRegistered: true });
  await stack.db.sql`UPDATE registrations SET reminded_at = now() - interval '1 hour' WHERE id = ${bob.body.id}`;
  const replay = await stack.server.client.register({ name: 'Bob', email: 'bob@example.org', course }, headers);
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.body, duplicate.body);
  assert.equal((await reminders(bob.body.id)).length, 1, 'the replay sent no reminder of its own');
  const original = await stack.server.client.register({ name: 'Bob', email: 'bob@example.org', course }, { 'idempotency-key': `bob-${course}` });
  assert.equal(original.status, 201, 'the original 201 with its token');
  assert.equal(original.body.manageToken, bob.body.manageToken);
});
