// Schemas of the webhook and admin delivery routes.
import Type from 'typebox';
import { PrintableText } from './common.schemas.ts';

const EventName = Type.Union([Type.Literal('registration.created'), Type.Literal('registration.promoted'), Type.Literal('registration.cancelled')]);

export const CreateWebhookBody = Type.Object({
  url: Type.String({ minLength: 8, maxLength: 2048, format: 'uri', description: 'an absolute http or https URL' }),
  events: Type.Array(EventName, { minItems: 1, maxItems: 3 }),
}, { additionalProperties: false });

export const Webhook = Type.Object({ id: Type.String(), url: Type.String(), events: Type.Array(Type.String()), createdAt: Type.String() });
export const CreatedWebhook = Type.Object({ ...Webhook.properties, secret: Type.String({ description: 'Standard Webhooks signing secret; shown once' }) });
// A plain pattern, not format: 'uuid', which also passes "urn:uuid:..." (PostgreSQL refuses it: a 500).
export const WebhookParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', description: 'a UUID' }) });

export const Delivery = Type.Object({
  id: Type.String(), eventId: Type.String(), eventType: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(), lastStatusCode: Type.Union([Type.Integer(), Type.Null()]), lastError: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(), updatedAt: Type.String(),
});

export const LimitQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false });

export const MailQuery = Type.Object({
  // Printable: a NUL cannot be compared with stored text (PostgreSQL refuses it: a 500).
  to: Type.Optional(PrintableText(1, 254, 'an e-mail address, without control characters')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  // At most 18 digits: always within PostgreSQL's bigint, whose largest value has 19.
  after: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'the `next` cursor of the previous page' })),
}, { additionalProperties: false });

export const MailPage = Type.Object({
  items: Type.Array(Type.Object({ id: Type.String(), messageId: Type.String(), from: Type.String(), to: Type.String(), subject: Type.String(), text: Type.String(), html: Type.String(), createdAt: Type.String() })),
  next: Type.Union([Type.String(), Type.Null()]),
});

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const DeliveryState = Type.Object({
  queues: Type.Array(Type.Object({ task: Type.String(), queued: Type.Integer(), running: Type.Integer(), retrying: Type.Integer(), dead: Type.Integer(), oldestQueuedSeconds: Nullable(Type.Number()) })),
  emails: Type.Object({
    sent: Type.Integer(), failed: Type.Integer(),
    recentFailures: Type.Array(Type.Object({ eventId: Type.String(), to: Type.String(), messageId: Type.String(), attempts: Type.Integer(), error: Nullable(Type.String()), at: Type.String() })),
  }),
  webhooks: Type.Object({ delivered: Type.Integer(), failed: Type.Integer(), pending: Type.Integer() }),
});
