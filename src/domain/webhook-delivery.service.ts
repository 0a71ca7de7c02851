// One webhook delivery as the deliver_webhook task sends it: whether it is still due, the body it
// posts (the same bytes on every retry), and what each attempt leaves in the delivery log.
import type { Sql } from '../db/database.ts';
import { loadDelivery, type PendingDelivery, recordDeliveryAttempt } from '../db/queries/webhooks.queries.ts';

/** A delivery still to be posted: where, signed with which secret, and what. */
export type DueWebhookDelivery = { id: string; url: string; secret: string; body: string };

/** How an attempt ended: 'retry' leaves the delivery pending for the job's next attempt. */
export type WebhookAttemptOutcome = 'delivered' | 'failed' | 'retry';

const STATUS_AFTER_EVENT: Record<string, string> = { enrolled: 'enrolled', waitlisted: 'waitlisted', promoted: 'enrolled', cancelled: 'cancelled',
  offered: 'waitlisted', accepted: 'enrolled', declined: 'cancelled', expired: 'cancelled' };

const DELIVERY_STATUS: Record<WebhookAttemptOutcome, 'delivered' | 'failed' | 'pending'> = { delivered: 'delivered', failed: 'failed', retry: 'pending' };

/** What the receiver is told: the event, the registration (or the queue place) as it stands after it, the course. */
function webhookBody(delivery: PendingDelivery): string {
  const subject = delivery.place_id === null
    ? {
      registration: {
        id: delivery.registration_id,
        course: delivery.course_id,
        name: delivery.name,
        email: delivery.email,
        status: STATUS_AFTER_EVENT[delivery.kind] ?? delivery.kind,
        waitlistPosition: delivery.waitlist_position,
      },
    }
    : {
      place: {
        id: delivery.place_id,
        course: delivery.course_id,
        name: delivery.name,
        email: delivery.email,
        status: delivery.kind === 'joined' ? (delivery.verifies ? 'unverified' : 'waiting') : delivery.kind,
        admittedUntil: delivery.kind === 'admitted' ? (delivery.admitted_until?.toISOString() ?? null) : null,
      },
    };
  return JSON.stringify({
    type: delivery.event_type,
    timestamp: delivery.event_at.toISOString(),
    data: { eventId: delivery.event_id, ...subject, course: { id: delivery.course_id, title: delivery.course_title } },
  });
}

/** The delivery with its body, or undefined when nothing is left to post (webhook deleted, or already done). */
export async function findDueWebhookDelivery(sql: Sql, deliveryId: string): Promise<DueWebhookDelivery | undefined> {
  const delivery = await loadDelivery(sql, deliveryId);
  if (!delivery || delivery.status !== 'pending') return undefined;
  return { id: delivery.id, url: delivery.url, secret: delivery.secret, body: webhookBody(delivery) };
}

export async function recordWebhookAttempt(sql: Sql, deliveryId: string, attempt: { outcome: WebhookAttemptOutcome; attempts: number; statusCode: number | null; error: string | null }): Promise<void> {
  await recordDeliveryAttempt(sql, { id: deliveryId, status: DELIVERY_STATUS[attempt.outcome], attempts: attempt.attempts, statusCode: attempt.statusCode, error: attempt.error });
}
