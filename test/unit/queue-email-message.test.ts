// The waiting room's emails: the page link with the email's own token in text and HTML, what each
// kind says (the confirmation of a verifyEmail place, the admission's deadline), escaping, and the
// Message-ID per event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QueueEmailEvent } from '../../src/db/queries/email.queries.ts';
import { buildQueueEmail } from '../../src/domain/queue-email-message.ts';

const place = '3f1b2c4d-5a47-4f5e-9a0a-0b6f3c1e5e6f';
const event = (kind: QueueEmailEvent['kind'], extra: Partial<QueueEmailEvent> = {}): QueueEmailEvent => ({
  eventId: '77', kind, placeId: place, name: 'Ada <Lovelace>', email: 'ada@example.org', courseId: 'cs101',
  courseTitle: 'Engines & "Notes"', admittedUntil: null, verifies: false, ...extra,
});
const options = { from: 'Registrar <no-reply@example.org>', publicUrl: 'https://reg.example.org', queueToken: 'emailed+token', messageDomain: 'reg.example.org' };
const link = `https://reg.example.org/queue/${place}/page#token=emailed%2Btoken`;

test('the joined email links to the place\'s page with the email\'s token, in text and HTML, escaped', () => {
  const message = buildQueueEmail(event('joined'), options);
  assert.equal(message.to, 'ada@example.org');
  assert.equal(message.subject, 'You are in the queue for Engines & "Notes"');
  assert.ok(message.text.includes(`See your place in the queue: ${link}`));
  assert.ok(message.html.includes(`href="${link}"`));
  assert.ok(message.html.includes('Hello Ada &lt;Lovelace&gt;,'));
  assert.ok(message.html.includes('Engines &amp; &quot;Notes&quot; (cs101)'));
  assert.doesNotMatch(message.text, /confirm/i);
  assert.equal(message.messageId, `<registrar.queue.${place}.joined.77@reg.example.org>`);
});

test('a place to verify is asked to confirm, in the joined email and in the link sent again', () => {
  const joined = buildQueueEmail(event('joined', { verifies: true }), options);
  assert.equal(joined.subject, 'Confirm your place in the queue for Engines & "Notes"');
  assert.match(joined.text, /Open the link below to confirm your address: until then your place does not count in the queue/);
  assert.ok(joined.text.includes(`Confirm and see your place: ${link}`));
  const again = buildQueueEmail(event('link', { verifies: true }), options);
  assert.equal(again.subject, 'Your link to the queue for Engines & "Notes"');
  assert.match(again.text, /tried to join the queue for Engines & "Notes" \(cs101\) again .* confirm your address/);
  assert.doesNotMatch(buildQueueEmail(event('link'), options).text, /confirm/i);
});

test('the admitted email states the deadline; the sold-out email says the queue will not reach the place', () => {
  const admitted = buildQueueEmail(event('admitted', { admittedUntil: new Date('2027-01-10T09:05:00.250Z') }), options);
  assert.equal(admitted.subject, 'Your turn: register for Engines & "Notes" now');
  assert.match(admitted.text, /Register before 2027-01-10 09:05:00 UTC;/);
  assert.match(admitted.text, /Status: admitted until 2027-01-10 09:05:00 UTC/);
  assert.ok(admitted.text.includes(`Register now: ${link}`));
  const soldOut = buildQueueEmail(event('sold-out'), options);
  assert.equal(soldOut.subject, 'Engines & "Notes" is sold out');
  assert.match(soldOut.text, /the queue will not reach your place/);
  assert.equal(soldOut.messageId, `<registrar.queue.${place}.sold-out.77@reg.example.org>`);
});

test('the same event gives the same message: a retry sends identical bytes', () => {
  const first = buildQueueEmail(event('admitted', { admittedUntil: new Date('2027-01-10T09:05:00Z') }), options);
  assert.deepEqual(buildQueueEmail(event('admitted', { admittedUntil: new Date('2027-01-10T09:05:00Z') }), options), first);
});
