// Runs on the worker-thread pool: turns a batch of emails (src/domain/email-message.ts) into the
// MIME text the SMTP transport sends as it is: multipart/alternative, plain text then HTML, each
// UTF-8 in quoted-printable. The headers are nodemailer's own (MimeNode: addresses punycoded and
// encoded, the subject as RFC 2047 words, Date, MIME-Version, the boundary); the bodies are
// written here, synchronously, as MailComposer writes them, without its streams (most of a
// millisecond per message, against a few tens of microseconds). The Message-ID is the message's
// own, so a retry sends the same one (invariant 4).
import MimeNode from 'nodemailer/lib/mime-node';
import { encode, wrap } from 'nodemailer/lib/qp';
import { Piscina } from 'piscina';
import type { EmailMessage } from '../domain/email-message.ts';
import { packTexts } from './packed-texts.ts';

const QP_LINE = 76;

function part(contentType: string, body: string): string {
  const crlf = body.replace(/\r?\n/g, '\r\n');
  return `Content-Type: ${contentType}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${wrap(encode(crlf), QP_LINE)}`;
}

/** The RFC 5322 text of one message. */
export function composeOne(message: EmailMessage): string {
  const root = new MimeNode('multipart/alternative');
  root.setHeader({ From: message.from, To: message.to, Subject: message.subject, 'Message-ID': message.messageId });
  const headers = root.buildHeaders();
  const boundary = String(root.boundary);
  return `${headers}\r\n\r\n--${boundary}\r\n${part('text/plain', message.text)}\r\n--${boundary}\r\n${part('text/html', message.html)}\r\n--${boundary}--\r\n`;
}

/** The MIME text of each message, in order. */
export function composeAll(messages: readonly EmailMessage[]): string[] {
  return messages.map(composeOne);
}

/** The pool's task: the batch's MIME packed in one buffer, moved (not cloned) to the caller (unpackTexts). */
export function composeMime(messages: EmailMessage[]): unknown {
  return Piscina.move(packTexts(composeAll(messages)));
}
