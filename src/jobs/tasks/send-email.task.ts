// The send_email task: one committed registration event -> one email, once.
// Order of work: skip if an outcome is already recorded; send; record 'sent' at once. A retry
// after a temporary failure therefore never sends twice; only a crash between the SMTP server's
// acceptance and the 'sent' row can, and then with the same Message-ID.
import type { Task } from 'graphile-worker';
import type { Logger } from 'pino';
import type { Sql } from '../../db/database.ts';
import { loadEmailEvent, recordEmailOutcome } from '../../db/queries/email.queries.ts';
import { buildEmail } from '../email/email-message.ts';
import { type MailTransport, PermanentEmailError } from '../email/mail-transport.ts';
import { addRetryJitter } from '../job-retry.ts';

export type SendEmailPayload = { eventId: string | number; manageToken: string };

export type SendEmailDeps = {
  sql: Sql;
  transport: MailTransport;
  from: string;
  publicUrl: string;
  logger: Logger;
  onOutcome?: (outcome: 'sent' | 'failed' | 'retry') => void;
};

function parsePayload(payload: unknown): SendEmailPayload {
  const value = payload as Partial<SendEmailPayload> | null;
  if (!value || (typeof value.eventId !== 'string' && typeof value.eventId !== 'number') || typeof value.manageToken !== 'string') {
    throw new Error(`send_email: malformed payload ${JSON.stringify(payload)}`);
  }
  return { eventId: value.eventId, manageToken: value.manageToken };
}

export function createSendEmailTask(deps: SendEmailDeps): Task {
  const messageDomain = new URL(deps.publicUrl).hostname || 'registrar.invalid';
  return async function sendEmail(payload, helpers) {
    const { eventId, manageToken } = parsePayload(payload);
    const event = await loadEmailEvent(deps.sql, String(eventId));
    if (!event) {
      deps.logger.error({ eventId }, 'send_email: no such event; dropping the job');
      return;
    }
    if (event.deliveryStatus !== null) return; // already sent (or failed for good): never twice
    const message = buildEmail(event, { from: deps.from, publicUrl: deps.publicUrl, manageToken, messageDomain });
    const { attempts, max_attempts: maxAttempts } = helpers.job;
    const outcome = { eventId: event.eventId, recipient: message.to, messageId: message.messageId, attempts };
    try {
      await deps.transport.send(message, event.eventId);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof PermanentEmailError || attempts >= maxAttempts) {
        // Completing the job deletes it, and the manage token in its payload with it.
        await recordEmailOutcome(deps.sql, { ...outcome, status: 'failed', error: reason });
        deps.onOutcome?.('failed');
        deps.logger.warn({ eventId, to: message.to, attempts, reason }, 'email failed for good');
        return;
      }
      deps.onOutcome?.('retry');
      await addRetryJitter(deps.sql, helpers.job.id, attempts);
      throw error;
    }
    await recordEmailOutcome(deps.sql, { ...outcome, status: 'sent', error: null });
    deps.onOutcome?.('sent');
  };
}
