// The MIME the SMTP transport sends: the message's own Message-ID (the same on every retry), its
// subject and sender encoded as RFC 2047 words, and both bodies, decoded, exactly as composed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildEmail } from '../../src/domain/email-message.ts';
import { composeAll, composeOne } from '../../src/runtime/email-mime.thread.ts';

const message = buildEmail({
  eventId: '7', kind: 'waitlisted', registrationId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  name: 'Ädä "Lovelace" <x> Spärck Jones, with a name long enough to need a soft line break somewhere in it',
  email: 'ada@example.org', courseId: 'c1', courseTitle: 'Cöurse <one> & friends', waitlistPosition: 3, offerUntil: null,
}, { from: 'Registrär <no-reply@localhost>', publicUrl: 'http://127.0.0.1:3000', manageToken: 'tok-_x'.repeat(7), messageDomain: 'localhost' });

function decodeQuotedPrintable(text: string): string {
  const bytes = text.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8').replace(/\r\n/g, '\n');
}

function parts(raw: string): { headers: string; bodies: Map<string, string> } {
  const [headers, ...rest] = raw.split('\r\n\r\n');
  const boundary = /boundary="([^"]+)"/.exec(headers!)![1]!;
  const bodies = new Map<string, string>();
  for (const chunk of rest.join('\r\n\r\n').split(`--${boundary}`).slice(1, -1)) {
    const [partHeaders, ...body] = chunk.replace(/^\r\n/, '').split('\r\n\r\n');
    const type = /Content-Type: ([^;]+)/.exec(partHeaders!)![1]!;
    assert.match(partHeaders!, /Content-Transfer-Encoding: quoted-printable/);
    bodies.set(type, decodeQuotedPrintable(body.join('\r\n\r\n').replace(/\r\n$/, '')));
  }
  return { headers: headers!, bodies };
}

test('the MIME carries the message\'s Message-ID, encoded headers and both bodies as composed', () => {
  const raw = composeOne(message);
  const { headers, bodies } = parts(raw);
  assert.match(headers, new RegExp(`Message-ID:\\s+${message.messageId.replace(/[.]/g, '\\.')}`));
  assert.match(headers, /^From: =\?UTF-8\?Q\?Registr=C3=A4r\?= <no-reply@localhost>$/m);
  assert.match(headers, /^To: ada@example\.org$/m);
  assert.match(headers, /^Subject: =\?UTF-8\?Q\?/m);
  assert.match(headers, /^MIME-Version: 1\.0$/m);
  assert.match(headers, /Content-Type: multipart\/alternative;/);
  assert.equal(bodies.get('text/plain'), message.text);
  assert.equal(bodies.get('text/html'), message.html);
  assert.ok(raw.split('\r\n').every((line) => line.length <= 78), 'no line longer than RFC 5322 recommends');
  assert.doesNotMatch(raw, /[^\x00-\x7f]/, '7-bit clean');
});

test('a batch gives one MIME text per message, in order, each with its own Message-ID', () => {
  const other = { ...message, to: 'grace@example.org', messageId: '<registrar.other@localhost>' };
  const [first, second] = composeAll([message, other]);
  assert.ok(first!.includes(message.messageId) && !first!.includes(other.messageId));
  assert.ok(second!.includes(other.messageId) && second!.includes('To: grace@example.org'));
});
