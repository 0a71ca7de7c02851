// The reminder email of a duplicate registration and a waitlist offer's email: plain text and
// HTML, the manage link (and an offer's accept and decline links), what they say, the Message-ID.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EmailEvent } from '../../src/db/queries/email.queries.ts';
import { buildEmail } from '../../src/domain/email-message.ts';

const reminder: EmailEvent = {
  eventId: '42',
  kind: 'reminder',
  registrationId: '0b6f3c1e-5a47-4f5e-9a0a-3f1b2c4d5e6f',
  name: 'Ada <Lovelace>',
  email: 'Ada@Example.org',
  courseId: 'cs101',
  courseTitle: 'Engines & "Notes"',
  waitlistPosition: null,
  offerUntil: null,
};

test('a reminder says someone tried to register again, with the fresh manage link, in text and HTML', () => {
  const message = buildEmail(reminder, { from: 'Registrar <no-reply@example.org>', publicUrl: 'https://reg.example.org', manageToken: 'fresh+token', messageDomain: 'reg.example.org' });
  assert.equal(message.to, 'Ada@Example.org');
  assert.equal(message.subject, 'You are already registered for Engines & "Notes"');
  assert.match(message.text, /Someone \(maybe you\) tried to register this address for Engines & "Notes" \(cs101\) again/);
  assert.ok(message.text.includes('https://reg.example.org/manage/0b6f3c1e-5a47-4f5e-9a0a-3f1b2c4d5e6f#token=fresh%2Btoken'));
  assert.match(message.html, /Someone \(maybe you\) tried to register/);
  assert.ok(message.html.includes('Engines &amp; &quot;Notes&quot;'), 'the HTML escapes the course title');
  assert.ok(message.html.includes('Hello Ada &lt;Lovelace&gt;,'));
  assert.ok(message.html.includes('href="https://reg.example.org/manage/0b6f3c1e-5a47-4f5e-9a0a-3f1b2c4d5e6f#token=fresh%2Btoken"'));
  assert.equal(message.messageId, '<registrar.0b6f3c1e-5a47-4f5e-9a0a-3f1b2c4d5e6f.reminder.42@reg.example.org>');
});

test('an offer states its deadline and carries accept and decline links to the manage page', () => {
  const offer: EmailEvent = { ...reminder, eventId: '43', kind: 'offered', offerUntil: new Date('2026-12-04T05:40:12.345Z') };
  const message = buildEmail(offer, { from: 'Registrar <no-reply@example.org>', publicUrl: 'https://reg.example.org', manageToken: 'tok', messageDomain: 'reg.example.org' });
  assert.equal(message.subject, 'A seat in Engines & "Notes" is offered to you until 2026-12-04 05:40:12 UTC');
  const manage = 'https://reg.example.org/manage/0b6f3c1e-5a47-4f5e-9a0a-3f1b2c4d5e6f#token=tok';
  assert.ok(message.text.includes(`Accept the seat: ${manage}&action=accept`));
  assert.ok(message.text.includes(`Decline the seat: ${manage}&action=decline`));
  assert.ok(message.html.includes(`href="${manage}&amp;action=accept"`));
  assert.equal(message.messageId, '<registrar.0b6f3c1e-5a47-4f5e-9a0a-3f1b2c4d5e6f.offered.43@reg.example.org>');
});
