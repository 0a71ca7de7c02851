// Runs on the worker-thread pool: turns a batch of emails (src/domain/email-message.ts) into the
// MIME text the SMTP transport sends as it is (nodemailer's MailComposer: headers, quoted-printable
// bodies, multipart/alternative). Building MIME is the CPU-heavy part of an email (most of a
// millisecond each, against microseconds for its text), so it runs here, not on the job worker's
// event loop. The Message-ID is the message's own, so a retry sends the same one (invariant 4).
import MailComposer from 'nodemailer/lib/mail-composer';
import type { EmailMessage } from '../domain/email-message.ts';

function composeOne(message: EmailMessage): Promise<string> {
  const mail = new MailComposer({ from: message.from, to: message.to, subject: message.subject, text: message.text, html: message.html, messageId: message.messageId });
  return new Promise((resolve, reject) => {
    mail.compile().build((error, built) => (error ? reject(error) : resolve(built.toString('utf8'))));
  });
}

/** The MIME text of each message, in order. */
export function composeMime(messages: EmailMessage[]): Promise<string[]> {
  return Promise.all(messages.map(composeOne));
}
