// The emails of a batch of events as the send_email job delivers them: whether each is still due
// (an email is sent at most once: an event with a recorded outcome is never sent again), the
// message composed for it, and the outcomes recorded once the transport has answered.
import type { Sql } from '../db/database.ts';
import { type EmailOutcomeRow, loadEmailEvents, recordEmailOutcomes } from '../db/queries/email.queries.ts';
import { buildEmail, type EmailMessage } from './email-message.ts';
import { buildQueueEmail } from './queue-email-message.ts';

export type DueEmail =
  | { kind: 'no-event' }
  /** Sent already, or failed for good. */
  | { kind: 'settled' }
  | { kind: 'due'; message: EmailMessage };

/** An email asked for: its event, and what its link carries (a registration's manage token, or
 * for a queue place's event the queue token made for the email). */
export type EmailRequest = { eventId: string; token: string };

export type ComposeOptions = { from: string; publicUrl: string; messageDomain: string };

/** The emails of a batch of events, each if it is still to be sent, in the order asked; one query. */
export async function findDueEmails(sql: Sql, requests: readonly EmailRequest[], options: ComposeOptions): Promise<DueEmail[]> {
  const events = await loadEmailEvents(sql, requests.map((request) => request.eventId));
  return requests.map(({ eventId, token }): DueEmail => {
    const event = events.get(eventId);
    if (!event) return { kind: 'no-event' };
    if (event.deliveryStatus !== null) return { kind: 'settled' };
    const message = 'placeId' in event ? buildQueueEmail(event, { ...options, queueToken: token }) : buildEmail(event, { ...options, manageToken: token });
    return { kind: 'due', message };
  });
}

export type EmailAttempt = { eventId: string; message: EmailMessage; attempts: number };
/** 'sent': the transport accepted it, the email is settled. 'failed': refused for good (or out
 * of attempts), settled too, with the reason the admin sees. */
export type EmailOutcome = EmailAttempt & ({ status: 'sent' } | { status: 'failed'; reason: string });

/** The outcomes of a batch of emails, in one statement. */
export async function recordOutcomes(sql: Sql, outcomes: readonly EmailOutcome[]): Promise<void> {
  await recordEmailOutcomes(sql, outcomes.map((outcome): EmailOutcomeRow => ({
    eventId: outcome.eventId,
    recipient: outcome.message.to,
    messageId: outcome.message.messageId,
    status: outcome.status,
    attempts: outcome.attempts,
    error: outcome.status === 'failed' ? outcome.reason : null,
  })));
}
