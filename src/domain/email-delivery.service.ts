// One event's email as the send_email job delivers it: whether it is still due (an email is sent
// at most once: an event with a recorded outcome is never sent again), the message composed for
// it, and the outcome recorded once the transport has answered.
import type { Sql } from '../db/database.ts';
import { loadEmailEvent, recordEmailOutcome } from '../db/queries/email.queries.ts';
import { buildEmail, type EmailMessage } from './email-message.ts';
import { buildQueueEmail } from './queue-email-message.ts';

export type DueEmail =
  | { kind: 'no-event' }
  /** Sent already, or failed for good. */
  | { kind: 'settled' }
  | { kind: 'due'; message: EmailMessage };

/**
 * The email of `eventId` if it is still to be sent, its link carrying `token`: a registration's
 * manage token, or for a queue place's event the queue token made for the email.
 */
export async function findDueEmail(sql: Sql, eventId: string, compose: { from: string; publicUrl: string; token: string; messageDomain: string }): Promise<DueEmail> {
  const event = await loadEmailEvent(sql, eventId);
  if (!event) return { kind: 'no-event' };
  if (event.deliveryStatus !== null) return { kind: 'settled' };
  const { token, ...options } = compose;
  const message = 'placeId' in event ? buildQueueEmail(event, { ...options, queueToken: token }) : buildEmail(event, { ...options, manageToken: token });
  return { kind: 'due', message };
}

type Attempt = { eventId: string; message: EmailMessage; attempts: number };

/** The transport accepted it: from now on the email is settled. */
export async function recordEmailSent(sql: Sql, attempt: Attempt): Promise<void> {
  await recordEmailOutcome(sql, { eventId: attempt.eventId, recipient: attempt.message.to, messageId: attempt.message.messageId, status: 'sent', attempts: attempt.attempts, error: null });
}

/** Refused for good (or out of attempts): settled too, with the reason the admin sees. */
export async function recordEmailFailed(sql: Sql, attempt: Attempt & { reason: string }): Promise<void> {
  await recordEmailOutcome(sql, { eventId: attempt.eventId, recipient: attempt.message.to, messageId: attempt.message.messageId, status: 'failed', attempts: attempt.attempts, error: attempt.reason });
}
