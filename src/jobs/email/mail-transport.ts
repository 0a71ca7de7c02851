// Where an email goes: an SMTP server (nodemailer, pooled, up to EMAIL_CONCURRENCY connections
// kept open, each send reported to the send window; the MIME built in batches on the thread pool)
// or, with no SMTP_URL, the built-in mailbox in the database (the emails in flight stored in
// batches, one statement each). Both report failures as temporary (retry later) or permanent (a
// 5xx reply: never retried).
import nodemailer from 'nodemailer';
import type { Sql } from '../../db/database.ts';
import type { EmailMessage, EmailThreads } from '../../domain/email-message.ts';
import { storeInMailbox } from '../../domain/mailbox.service.ts';
import { batchCalls } from '../batch-calls.ts';
import type { SendFeedback } from './send-window.ts';

export class PermanentEmailError extends Error {
  override name = 'PermanentEmailError';
}

export type MailTransport = {
  readonly kind: 'smtp' | 'mailbox';
  send(message: EmailMessage, eventId: string): Promise<void>;
  close(): Promise<void>;
};

/**
 * `concurrency`: the pool's connections, the send window's ceiling; `window` hears how each send
 * went; `threads`, when given, builds the MIME off the event loop (else nodemailer builds it on it).
 */
export type SmtpOptions = { url: string; concurrency: number; timeoutMs?: number; window?: SendFeedback; threads?: EmailThreads };

/**
 * Messages per SMTP connection before nodemailer closes it and opens another. A connection
 * costs a TCP handshake and a greeting, EHLO and their round trips on both sides: reused for
 * thousands of messages, it is nearly free per message; still recycled now and then, so a
 * server's per-session limits and a long-lived socket's troubles do not build up.
 */
export const MESSAGES_PER_CONNECTION = 10_000;
/** MIME built per thread-pool task: big enough that a task's hand-over (a few tenths of a
 * millisecond) is small beside its work (most of a millisecond per message), small enough that
 * a burst of a hundred emails is shared by the threads. */
export const MIME_BATCH = 32;

/** The commands whose 5yz reply refuses this message or its recipient (nodemailer's `command` field). */
const MESSAGE_COMMANDS = new Set(['RCPT TO', 'DATA']);
/** RFC 4954 / 3207 replies about authentication or TLS, whichever command they answer: the configuration's fault. */
const CONFIGURATION_REPLIES = new Set([530, 534, 535, 538]);

/**
 * RFC 5321 section 4.2.1: a 5yz reply is a permanent failure, 4yz and lost connections are
 * transient. Permanent for this message only when the server refused the message or its
 * recipient (a 5yz to RCPT TO or DATA). A 5yz anywhere else (535 to AUTH, 530 to STARTTLS or
 * MAIL FROM, 550 to MAIL FROM for a sender it will not take) is the configuration's fault, true
 * of every message and mended by an operator: retried, so the mail goes once it is mended.
 */
export function classifySmtpError(error: unknown): Error {
  const { responseCode, command } = error as { responseCode?: number; command?: string };
  const message = error instanceof Error ? error.message : String(error);
  if (typeof responseCode === 'number' && responseCode >= 500 && responseCode < 600 && !CONFIGURATION_REPLIES.has(responseCode)
    && command !== undefined && MESSAGE_COMMANDS.has(command)) {
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
    maxMessages: MESSAGES_PER_CONNECTION,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  const threads = options.threads;
  const composeMime = threads && batchCalls((messages: EmailMessage[]) => threads.composeMime(messages), { maxBatch: MIME_BATCH, maxInFlight: threads.threads * 2 });
  return {
    kind: 'smtp',
    async send(message) {
      const raw = composeMime ? await composeMime(message) : undefined;
      const ticket = options.window?.begin();
      try {
        await transporter.sendMail(raw === undefined
          ? { from: message.from, to: message.to, subject: message.subject, text: message.text, html: message.html, messageId: message.messageId }
          : { envelope: { from: message.from, to: message.to }, raw, messageId: message.messageId });
        if (ticket) options.window?.succeeded(ticket);
      } catch (error) {
        if (ticket) options.window?.failed(ticket, error);
        throw classifySmtpError(error);
      }
    },
    async close() {
      transporter.close();
    },
  };
}

/** Emails stored per statement, and statements in flight at once (database connections). */
const MAILBOX_BATCH = 500;
const MAILBOX_STATEMENTS_IN_FLIGHT = 4;

export function createMailboxTransport(sql: Sql): MailTransport {
  const store = batchCalls(async (entries: { eventId: string; message: EmailMessage }[]) => {
    await storeInMailbox(sql, entries);
    return entries.map(() => undefined);
  }, { maxBatch: MAILBOX_BATCH, maxInFlight: MAILBOX_STATEMENTS_IN_FLIGHT });
  return {
    kind: 'mailbox',
    async send(message, eventId) {
      await store({ eventId, message });
    },
    async close() {},
  };
}

/** SMTP when SMTP_URL is set, else the built-in mailbox. */
export function createConfiguredTransport(config: { smtpUrl: string | undefined; emailConcurrency: number }, sql: Sql, window: SendFeedback, threads?: EmailThreads): MailTransport {
  return config.smtpUrl ? createSmtpTransport({ url: config.smtpUrl, concurrency: config.emailConcurrency, window, ...(threads ? { threads } : {}) }) : createMailboxTransport(sql);
}
