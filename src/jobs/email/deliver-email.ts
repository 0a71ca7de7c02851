// Delivers the email of one registration event: the one code path used by the send_email job
// and by the "inline" demonstration mode. Skips an event whose outcome is already recorded;
// records 'sent' right after the transport accepts; records 'failed' on a permanent refusal or
// the last attempt; rethrows a temporary failure for the caller to retry.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Sql } from '../../db/database.ts';
import { findCreationEventId, loadEmailEvent, recordEmailOutcome } from '../../db/queries/email.queries.ts';
import type { EmailStep } from '../../observability/job-activity.ts';
import { createLimiter } from '../job-entries.ts';
import { buildEmail } from '../../domain/email-message.ts';
import { type MailTransport, PermanentEmailError } from './mail-transport.ts';

export type EmailDeliveryDeps = {
  sql: Sql;
  transport: MailTransport;
  from: string;
  publicUrl: string;
  logger: Logger;
  onOutcome?: (outcome: 'sent' | 'failed' | 'retry') => void;
  /**
   * EMAIL_DELIVERY=inline, on the job's side: the request that created a registration sends its
   * first email itself. For this long after the event, the job leaves such an email to the
   * request (it retries later) unless the request recorded an outcome; after it, the job sends
   * it (the request failed, or its process died).
   */
  leaveToInlineMs?: number;
  /**
   * EMAIL_DELIVERY=inline, on the request's side: the SMTP exchange starts at most this long
   * after the event; later (the request waited its turn too long), the email is left to its job.
   * With leaveToInlineMs well past it, the request and the job never send one email at once.
   */
  startWithinMs?: number;
};

/** The emails the request sends itself in EMAIL_DELIVERY=inline: a new registration's first. */
const SENT_INLINE: ReadonlySet<string> = new Set(['enrolled', 'waitlisted']);

export type EmailOutcome = 'sent' | 'failed' | 'skipped';

const RECORD_RETRY_FIRST_MS = 100;
const RECORD_RETRY_MAX_MS = 5_000;
/** About ten minutes of a database away before the record is given up (and a copy may follow). */
const RECORD_ATTEMPTS = 130;

/** Runs `write` until it succeeds, backing off from 100 ms to 5 s; rethrows only after about ten minutes. */
export async function recordUntilStored(write: () => Promise<unknown>, onFailure: (error: unknown, attempt: number) => void): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await write();
      return;
    } catch (error) {
      if (attempt >= RECORD_ATTEMPTS) throw error;
      onFailure(error, attempt);
      await sleep(Math.min(RECORD_RETRY_FIRST_MS * 2 ** (attempt - 1), RECORD_RETRY_MAX_MS));
    }
  }
}

export function createEmailDelivery(deps: EmailDeliveryDeps) {
  const messageDomain = new URL(deps.publicUrl).hostname || 'registrar.invalid';
  /** `step` tells the job worker's lane what this email waits for now (job-activity.ts). */
  return async function deliverEmail(eventId: string, manageToken: string, attempt: { attempts: number; maxAttempts: number }, step: (step: EmailStep) => void = () => {}): Promise<EmailOutcome> {
    step('load');
    const event = await loadEmailEvent(deps.sql, eventId);
    if (!event) {
      deps.logger.error({ eventId }, 'email: no such event; nothing to send');
      return 'skipped';
    }
    if (event.deliveryStatus !== null) return 'skipped'; // already sent (or failed for good): never twice
    if (deps.leaveToInlineMs !== undefined && SENT_INLINE.has(event.kind) && event.ageMs < deps.leaveToInlineMs) {
      throw new Error(`email of event ${eventId} is being sent inside its request (EMAIL_DELIVERY=inline); checked again later`);
    }
    if (deps.startWithinMs !== undefined && event.ageMs >= deps.startWithinMs) {
      throw new Error(`email of event ${eventId} not started within ${deps.startWithinMs} ms of its event; left to its job`);
    }
    const message = buildEmail(event, { from: deps.from, publicUrl: deps.publicUrl, manageToken, messageDomain });
    const outcome = { eventId: event.eventId, recipient: message.to, messageId: message.messageId, attempts: attempt.attempts };
    try {
      step('send');
      await deps.transport.send(message, event.eventId);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof PermanentEmailError || attempt.attempts >= attempt.maxAttempts) {
        step('record');
        await recordEmailOutcome(deps.sql, { ...outcome, status: 'failed', error: reason });
        deps.onOutcome?.('failed');
        deps.logger.warn({ eventId, to: message.to, attempts: attempt.attempts, reason }, 'email failed for good');
        return 'failed';
      }
      deps.onOutcome?.('retry');
      throw error;
    }
    // Accepted: from here on a failure must not make the caller retry, or the email would go
    // twice (invariant 4). The record is written again until the database takes it.
    step('record');
    await recordUntilStored(() => recordEmailOutcome(deps.sql, { ...outcome, status: 'sent', error: null }), (error, attempt) =>
      deps.logger.error({ err: error, eventId, attempt }, 'email sent, but its record could not be written yet; trying again'));
    deps.onOutcome?.('sent');
    return 'sent';
  };
}

export type DeliverEmail = ReturnType<typeof createEmailDelivery>;

/**
 * EMAIL_DELIVERY=inline: a request starts its email's SMTP exchange within INLINE_START_WITHIN_MS
 * of the event or leaves it to the job, and the job worker leaves a new registration's email to
 * its request for INLINE_EMAIL_GRACE_MS. The 60 s between them is the exchange's own time: two
 * of the transport's 30 s timeouts. So the request and the job never send one email at once.
 */
export const INLINE_START_WITHIN_MS = 30_000;
export const INLINE_EMAIL_GRACE_MS = 90_000;

/**
 * The demonstration mode EMAIL_DELIVERY=inline: send the email of a registration just created
 * inside the request. Never use it for real: one slow mail server then slows every
 * registration, which is the point of the demonstration. The email's job is still queued with
 * the registration: a temporary failure here, or a turn that came too late, is left to it (sent
 * after INLINE_EMAIL_GRACE_MS, with the job's retries), so even this mode loses no email; the
 * job worker sends the later emails (promotions, cancels) as always.
 *
 * `concurrency` is the transport's connections: the requests wait their turn here, where the
 * wait is seen and bounded by INLINE_START_WITHIN_MS, not in the SMTP pool's own queue.
 */
export function createInlineEmail(deps: Omit<EmailDeliveryDeps, 'leaveToInlineMs' | 'startWithinMs'>, options: { concurrency: number; startWithinMs?: number }) {
  const deliverEmail = createEmailDelivery({ ...deps, startWithinMs: options.startWithinMs ?? INLINE_START_WITHIN_MS });
  const limit = createLimiter(options.concurrency);
  /** `phase` tells the request's lane what it waits for: a connection, the database, the SMTP exchange. */
  return async function sendInline(registrationId: string, manageToken: string, phase: (phase: InlinePhase) => void = () => {}): Promise<void> {
    const eventId = await findCreationEventId(deps.sql, registrationId);
    if (eventId === undefined) return;
    try {
      phase('waiting for a mail-server connection');
      await limit(() => deliverEmail(eventId, manageToken, { attempts: 1, maxAttempts: Number.POSITIVE_INFINITY }, (step) => phase(step === 'send' ? 'sending email to SMTP' : 'waiting for the database')));
    } catch (error) {
      deps.logger.warn({ err: error, eventId }, 'inline email not sent; its job will send it');
    }
  };
}

export type InlinePhase = 'waiting for a mail-server connection' | 'sending email to SMTP' | 'waiting for the database';

export type InlineEmail = ReturnType<typeof createInlineEmail>;
