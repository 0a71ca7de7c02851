// Webhook subscriptions: which URL hears which registration and queue events, and what happened to each
// delivery. Secrets are Standard Webhooks secrets ("whsec_" + base64 of 32 random bytes).
import { randomBytes } from 'node:crypto';
import type { Sql } from '../db/database.ts';
import { deleteWebhook, type DeliveryRow, findWebhook, insertWebhook, listDeliveries, listWebhooks, type WebhookRow } from '../db/queries/webhooks.queries.ts';
import { assertPublicUrl } from '../security/address-guard.ts';
import { DomainError } from './domain-error.ts';

export const WEBHOOK_EVENTS = ['registration.created', 'registration.promoted', 'registration.cancelled',
  'registration.offered', 'registration.offer-accepted', 'registration.offer-declined', 'registration.offer-expired', 'queue.joined', 'queue.admitted', 'queue.sold-out'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Only http and https: no file:, no data:, no credentials smuggled in the URL. */
function assertDeliverableUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DomainError('invalid-webhook', 'url must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DomainError('invalid-webhook', 'url must use http or https');
  if (url.username || url.password) throw new DomainError('invalid-webhook', 'url must not contain credentials');
  return url;
}

/** The new subscription with its secret: the one time the secret leaves the service. */
export async function createWebhook(sql: Sql, input: { url: string; events: WebhookEvent[] }, options: { allowPrivate: boolean }): Promise<WebhookRow> {
  const parsed = assertDeliverableUrl(input.url);
  if (!options.allowPrivate) {
    await assertPublicUrl(parsed).catch((error: unknown) => {
      throw new DomainError('invalid-webhook', `url cannot be used: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
  const url = parsed.href;
  const events = [...new Set(input.events)];
  return insertWebhook(sql, { url, events, secret: `whsec_${randomBytes(32).toString('base64')}` });
}

export async function getWebhooks(sql: Sql): Promise<WebhookRow[]> {
  return listWebhooks(sql);
}

export async function removeWebhook(sql: Sql, id: string): Promise<void> {
  if (!(await deleteWebhook(sql, id))) throw new DomainError('webhook-not-found', `There is no webhook "${id}"`);
}

export async function getDeliveries(sql: Sql, webhookId: string, limit: number): Promise<DeliveryRow[]> {
  if (!(await findWebhook(sql, webhookId))) throw new DomainError('webhook-not-found', `There is no webhook "${webhookId}"`);
  return listDeliveries(sql, webhookId, limit);
}
