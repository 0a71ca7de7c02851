// Schemas of the webhook and admin delivery routes, and the answers their rows become.
import Type, { type Static } from 'typebox';
import type { MailboxRow } from '../../db/queries/email.queries.ts';
import type { DeliveryRow, WebhookRow } from '../../db/queries/webhooks.queries.ts';
import type { DeliveryOverview } from '../../domain/mailbox.service.ts';
import { WEBHOOK_EVENTS } from '../../domain/webhooks.service.ts';
import { PrintableText, Uuid } from './common.schemas.ts';

const EventName = Type.Union(WEBHOOK_EVENTS.map((event) => Type.Literal(event)), { description: 'queue.joined, queue.admitted and queue.sold-out carry the queue place instead of a registration' });

export const CreateWebhookBody = Type.Object({
  url: Type.String({ minLength: 8, maxLength: 2048, format: 'uri', description: 'an absolute http or https URL' }),
  events: Type.Array(EventName, { minItems: 1, maxItems: WEBHOOK_EVENTS.length }),
}, { additionalProperties: false });

export const Webhook = Type.Object({ id: Type.String(), url: Type.String(), events: Type.Array(Type.String()), createdAt: Type.String() });
export const CreatedWebhook = Type.Object({ ...Webhook.properties, secret: Type.String({ description: 'Standard Webhooks signing secret; shown once' }) });

/** A subscription without its secret: shown only once, by CreatedWebhook. */
export function toWebhook(row: WebhookRow): Static<typeof Webhook> {
  return { id: row.id, url: row.url, events: row.events, createdAt: row.created_at.toISOString() };
}
export const WebhookParams = Type.Object({ id: Uuid });

export const Delivery = Type.Object({
  id: Type.String(), eventId: Type.String(), eventType: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(), lastStatusCode: Type.Union([Type.Integer(), Type.Null()]), lastError: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(), updatedAt: Type.String(),
});

export function toDelivery(row: DeliveryRow): Static<typeof Delivery> {
  return {
    id: row.id, eventId: row.event_id, eventType: row.event_type, status: row.status, attempts: row.attempts,
    lastStatusCode: row.last_status_code, lastError: row.last_error, createdAt: row.created_at.toISOString(), updatedAt: row.updated_at.toISOString(),
  };
}

export const LimitQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false });

export const MailQuery = Type.Object({
  // Printable: a NUL cannot be compared with stored text (PostgreSQL refuses it: a 500).
  to: Type.Optional(PrintableText(1, 254, 'an e-mail address, without control characters')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  // At most 18 digits: always within PostgreSQL's bigint, whose largest value has 19.
  after: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'the `next` cursor of the previous page' })),
}, { additionalProperties: false });

export const MailMessage = Type.Object({ id: Type.String(), messageId: Type.String(), from: Type.String(), to: Type.String(), subject: Type.String(), text: Type.String(), html: Type.String(), createdAt: Type.String() });

export const MailPage = Type.Object({
  items: Type.Array(MailMessage),
  next: Type.Union([Type.String(), Type.Null()]),
});

export function toMailMessage(row: MailboxRow): Static<typeof MailMessage> {
  return { id: row.id, messageId: row.message_id, from: row.sender, to: row.recipient, subject: row.subject, text: row.text_body, html: row.html_body, createdAt: row.created_at.toISOString() };
}

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const DeliveryState = Type.Object({
  queues: Type.Array(Type.Object({ task: Type.String(), queued: Type.Integer(), running: Type.Integer(), retrying: Type.Integer(), dead: Type.Integer(), oldestQueuedSeconds: Nullable(Type.Number()) })),
  emails: Type.Object({
    sent: Type.Integer(), failed: Type.Integer(),
    recentFailures: Type.Array(Type.Object({ eventId: Type.String(), to: Type.String(), messageId: Type.String(), attempts: Type.Integer(), error: Nullable(Type.String()), at: Type.String() })),
  }),
  webhooks: Type.Object({ delivered: Type.Integer(), failed: Type.Integer(), pending: Type.Integer() }),
});

export function toDeliveryState(state: DeliveryOverview): Static<typeof DeliveryState> {
  const { queues, totals, recentFailures } = state;
  return {
    queues: queues.map((q) => ({ task: q.task, queued: q.queued, running: q.running, retrying: q.retrying, dead: q.dead, oldestQueuedSeconds: q.oldest_queued_seconds })),
    emails: {
      sent: totals.emails_sent,
      failed: totals.emails_failed,
      recentFailures: recentFailures.map((f) => ({ eventId: f.event_id, to: f.recipient, messageId: f.message_id, attempts: f.attempts, error: f.last_error, at: f.updated_at.toISOString() })),
    },
    webhooks: { delivered: totals.webhooks_delivered, failed: totals.webhooks_failed, pending: totals.webhooks_pending },
  };
}
