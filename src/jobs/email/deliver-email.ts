// Delivers the email of one event, a registration's or a queue place's (the send_email job's code path). Skips an event
// whose outcome is already recorded; records 'sent' right after the transport accepts; records
// 'failed' on a permanent refusal or the last attempt; rethrows a temporary failure for the
// caller to retry.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Sql } from '../../db/database.ts';
import type { EmailStep } from '../../observability/job-activity.ts';
import { type DueEmail, type EmailOutcome as RecordedOutcome, type EmailRequest, findDueEmails, recordOutcomes } from '../../domain/email-delivery.service.ts';
import { batchCalls } from '../batch-calls.ts';
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

/**
 * Database connections the emails in flight of one process share, at most. An email holds one
 * for two short queries (its event, its outcome), never across its SMTP exchange, so a send
 * window of a hundred emails needs far fewer connections than emails.
 */
export const EMAIL_DATABASE_CONNECTIONS = 16;

/**
 * The emails in flight load their events and record their outcomes in batches (batch-calls.ts): up
 * to this many emails per statement, and up to EMAIL_STATEMENTS_IN_FLIGHT statements of each
 * kind at once, so loads and records together hold at most half of the connections above.
 */
const EMAILS_PER_STATEMENT = 500;
const EMAIL_STATEMENTS_IN_FLIGHT = 4;

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
  const compose = { from: deps.from, publicUrl: deps.publicUrl, messageDomain: new URL(deps.publicUrl).hostname || 'registrar.invalid' };
  const batches = { maxBatch: EMAILS_PER_STATEMENT, maxInFlight: EMAIL_STATEMENTS_IN_FLIGHT };
  const findDue = batchCalls<EmailRequest, DueEmail>((requests) => findDueEmails(deps.sql, requests, compose), batches);
  const record = batchCalls<RecordedOutcome, void>(async (outcomes) => {
    await recordOutcomes(deps.sql, outcomes);
    return outcomes.map(() => undefined);
  }, batches);
  /** `step` tells the job worker's lane what this email waits for now (job-activity.ts). */
  /** `token`: what the email's link carries (a manage token, or a queue place's emailed token). */
  return async function deliverEmail(eventId: string, token: string, attempt: { attempts: number; maxAttempts: number }, step: (step: EmailStep) => void = () => {}): Promise<EmailOutcome> {
    step('load');
    const due = await findDue({ eventId, token });
    if (due.kind === 'no-event') {
      deps.logger.error({ eventId }, 'email: no such event; nothing to send');
      return 'skipped';
    }
    if (due.kind === 'settled') return 'skipped'; // already sent (or failed for good): never twice
    const { message } = due;
    const outcome = { eventId, message, attempts: attempt.attempts };
    try {
      step('send');
      await deps.transport.send(message, eventId);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof PermanentEmailError || attempt.attempts >= attempt.maxAttempts) {
        step('record');
        await record({ ...outcome, status: 'failed', reason });
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
    await recordUntilStored(() => record({ ...outcome, status: 'sent' }), (error, attempt) =>
      deps.logger.error({ err: error, eventId, attempt }, 'email sent, but its record could not be written yet; trying again'));
    deps.onOutcome?.('sent');
    return 'sent';
  };
}

export type DeliverEmail = ReturnType<typeof createEmailDelivery>;
