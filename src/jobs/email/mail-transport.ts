// Where an email goes: an SMTP server (nodemailer, pooled, bounded by EMAIL_CONCURRENCY) or, with
// no SMTP_URL, the built-in mailbox in the database. Both report failures as temporary (retry
// later) or permanent (a 5xx reply: never retried).
import nodemailer from 'nodemailer';
import type { Sql } from '../../db/database.ts';
import { insertMailboxMessage } from '../../db/queries/email.queries.ts';
import type { EmailMessage } from './email-message.ts';

export class PermanentEmailError extends Error {
  override name = 'PermanentEmailError';
}

export type MailTransport = {
  readonly kind: 'smtp' | 'mailbox';
  send(message: EmailMessage, eventId: string): Promise<void>;
  close(): Promise<void>;
};

export type SmtpOptions = { url: string; concurrency: number; timeoutMs?: number };

/** RFC 5321 section 4.2.1: 5yz is a permanent failure; 4yz and lost connections are transient. */
function classify(error: unknown): Error {
  const responseCode = (error as { responseCode?: number }).responseCode;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof responseCode === 'number' && responseCode >= 500 && responseCode < 600) {
    return new PermanentEmailError(message, { cause: error });
  }
  return error instanceof Error ? error : new Error(message);
}

export function createSmtpTransport(options: SmtpOptions): MailTransport {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const transporter = nodemailer.createTransport({
    url: options.url,
    pool: true,
    maxConnections: options.concurrency,
    maxMessages: 100,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    kind: 'smtp',
    async send(message) {
      try {
        await transporter.sendMail({
          from: message.from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          messageId: message.messageId,
        });
      } catch (error) {
        throw classify(error);
      }
    },
    async close() {
      transporter.close();
    },
  };
}

export function createMailboxTransport(sql: Sql): MailTransport {
  return {
    kind: 'mailbox',
    async send(message, eventId) {
      // Once per event, by the UNIQUE on event_id: a re-run of the job stores nothing new.
      await insertMailboxMessage(sql, eventId, message);
    },
    async close() {},
  };
}

/** SMTP when SMTP_URL is set, else the built-in mailbox. */
export function createConfiguredTransport(config: { smtpUrl: string | undefined; emailConcurrency: number }, sql: Sql): MailTransport {
  return config.smtpUrl ? createSmtpTransport({ url: config.smtpUrl, concurrency: config.emailConcurrency }) : createMailboxTransport(sql);
}
