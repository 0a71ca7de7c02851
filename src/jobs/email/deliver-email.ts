// Delivers the email of one registration event: the one code path used by the send_email job
// and by the "inline" demonstration mode. Skips an event whose outcome is already recorded;
// records 'sent' right after the transport accepts; records 'failed' on a permanent refusal or
// the last attempt; rethrows a temporary failure for the caller to retry.
import type { Logger } from 'pino';
import type { Sql } from '../../db/database.ts';
import { findLatestEventId, loadEmailEvent, recordEmailOutcome } from '../../db/queries/email.queries.ts';
import { buildEmail } from './email-message.ts';
import { type MailTransport, PermanentEmailError } from './mail-transport.ts';

export type EmailDeliveryDeps = {
  sql: Sql;
  transport: MailTransport;
  from: string;
  publicUrl: string;
  logger: Logger;
  onOutcome?: (outcome: 'sent' | 'failed' | 'retry') => void;
};

export type EmailOutcome = 'sent' | 'failed' | 'skipped';

export function createEmailDelivery(deps: EmailDeliveryDeps) {
  const messageDomain = new URL(deps.publicUrl).hostname || 'registrar.invalid';
  return async function deliverEmail(eventId: string, manageToken: string, attempt: { attempts: number; maxAttempts: number }): Promise<EmailOutcome> {
    const event = await loadEmailEvent(deps.sql, eventId);
    if (!event) {
      deps.logger.error({ eventId }, 'email: no such event; nothing to send');
      return 'skipped';
    }
    if (event.deliveryStatus !== null) return 'skipped'; // already sent (or failed for good): never twice
    const message = buildEmail(event, { from: deps.from, publicUrl: deps.publicUrl, manageToken, messageDomain });
    const outcome = { eventId: event.eventId, recipient: message.to, messageId: message.messageId, attempts: attempt.attempts };
    try {
      await deps.transport.send(message, event.eventId);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof PermanentEmailError || attempt.attempts >= attempt.maxAttempts) {
        await recordEmailOutcome(deps.sql, { ...outcome, status: 'failed', error: reason });
        deps.onOutcome?.('failed');
        deps.logger.warn({ eventId, to: message.to, attempts: attempt.attempts, reason }, 'email failed for good');
        return 'failed';
      }
      deps.onOutcome?.('retry');
      throw error;
    }
    await recordEmailOutcome(deps.sql, { ...outcome, status: 'sent', error: null });
    deps.onOutcome?.('sent');
    return 'sent';
  };
}

export type DeliverEmail = ReturnType<typeof createEmailDelivery>;

/**
 * The demonstration mode EMAIL_DELIVERY=inline: send the email of a registration just created
 * inside the request, once, with no retry. Never use it for real: one slow mail server then
 * slows every registration, which is the point of the demonstration.
 */
export function createInlineEmail(deliverEmail: DeliverEmail, sql: Sql) {
  return async function sendInline(registrationId: string, manageToken: string): Promise<void> {
    const eventId = await findLatestEventId(sql, registrationId);
    if (eventId !== undefined) await deliverEmail(eventId, manageToken, { attempts: 1, maxAttempts: 1 });
  };
}

export type InlineEmail = ReturnType<typeof createInlineEmail>;
