// The deliver_webhook task: POST each event to its subscribed URL (a job holds the deliveries of
// one group commit: job-entries.ts), signed per the Standard
// Webhooks specification (webhook-id / webhook-timestamp / webhook-signature), with a timeout.
// 2xx is delivered; anything else is retried with backoff until the attempts run out. The
// webhook-id is the delivery's id, the same on every retry, so a receiver can drop duplicates.
// An outcome that settles the delivery (delivered, failed for good) is written again until the
// database takes it (a full disk, a restart), as an email's is: failing the job instead would
// post an accepted webhook again, or leave a failed one pending.
import type { Task } from 'graphile-worker';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import { Agent, fetch } from 'undici';
import type { Sql } from '../../db/database.ts';
import { findDueWebhookDelivery, recordWebhookAttempt, type WebhookAttemptOutcome } from '../../domain/webhook-delivery.service.ts';
import { recordUntilStored } from '../email/deliver-email.ts';
import { type Limiter, runJobEntries } from '../job-entries.ts';
import { addRetryJitter } from '../job-retry.ts';
import { InternalAddressError, isInternalAddress, publicOnlyLookup } from '../../security/address-guard.ts';

export type DeliverWebhookDeps = {
  sql: Sql;
  timeoutMs: number;
  logger: Logger;
  /** Deliver to loopback and private addresses too (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate?: boolean;
  onOutcome?: (outcome: WebhookAttemptOutcome) => void;
  /** Bounds the deliveries in flight across every job of the process (WEBHOOK_CONCURRENCY): a job can hold hundreds. */
  limit: Limiter;
};

/** Refused by the address guard (here or in the connection's lookup): no retry will change that. */
function isInternalAddressRefusal(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (current instanceof InternalAddressError) return true;
  }
  return false;
}

/** fetch's own message is "fetch failed"; the reason is in its cause. */
function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let current = error; current instanceof Error && parts.length < 3; current = current.cause) parts.push(`${current.name}: ${current.message}`);
  return parts.length > 0 ? parts.join(' <- ') : String(error);
}

export function createDeliverWebhookTask(deps: DeliverWebhookDeps): Task {
  // Every connection resolves its host through the guard: the address checked is the address used.
  const dispatcher = new Agent(deps.allowPrivate ? {} : { connect: { lookup: publicOnlyLookup } });
  return async function deliverWebhooks(payload, helpers) {
    const { attempts, max_attempts: maxAttempts } = helpers.job;
    return runJobEntries(payload, (entry) => deps.limit(() => deliverWebhook(entry, attempts, maxAttempts)), () => addRetryJitter(deps.sql, helpers.job.id, attempts));
  };

  async function deliverWebhook(payload: unknown, attempts: number, maxAttempts: number): Promise<void> {
    const deliveryId = (payload as { deliveryId?: unknown } | null)?.deliveryId;
    if (typeof deliveryId !== 'string') throw new Error(`deliver_webhook: malformed payload ${JSON.stringify(payload)}`);
    const retryingRecord = (error: unknown, attempt: number) =>
      deps.logger.error({ err: error, deliveryId, attempt }, 'webhook outcome could not be recorded yet; trying again');
    const delivery = await findDueWebhookDelivery(deps.sql, deliveryId);
    if (!delivery) return; // webhook deleted, or already done
    const { body } = delivery;
    // One instant for the signature and its header: signed in one second and stamped in the
    // next, a delivery would fail the receiver's check (the timestamp is part of what is signed).
    const sentAt = new Date();
    const signature = new Webhook(delivery.secret).sign(delivery.id, sentAt, body);
    let statusCode: number | null = null;
    let error: string | null = null;
    let permanent = false;
    try {
      const host = new URL(delivery.url).hostname.replace(/^\[|\]$/g, '');
      if (!deps.allowPrivate && isInternalAddress(host)) throw new InternalAddressError(`${host} is an internal address`);
      const response = await fetch(delivery.url, {
        dispatcher,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Registrar-Webhooks/1',
          'webhook-id': delivery.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body,
        redirect: 'manual', // a redirect is an answer, not an invitation to post elsewhere
        signal: AbortSignal.timeout(deps.timeoutMs),
      });
      statusCode = response.status;
      await response.body?.cancel();
      if (response.ok) {
        await recordUntilStored(() => recordWebhookAttempt(deps.sql, delivery.id, { outcome: 'delivered', attempts, statusCode, error: null }), retryingRecord);
        deps.onOutcome?.('delivered');
        return;
      }
      error = `HTTP ${response.status}`;
    } catch (cause) {
      error = describeError(cause);
      permanent = isInternalAddressRefusal(cause);
    }
    const final = permanent || attempts >= maxAttempts;
    const record = () => recordWebhookAttempt(deps.sql, delivery.id, { outcome: final ? 'failed' : 'retry', attempts, statusCode, error });
    // A pending attempt that cannot be recorded fails the job like the POST did: it is retried.
    await (final ? recordUntilStored(record, retryingRecord) : record());
    if (final) {
      deps.onOutcome?.('failed');
      deps.logger.warn({ deliveryId, url: delivery.url, attempts, error }, 'webhook delivery failed for good');
      return;
    }
    deps.onOutcome?.('retry');
    throw new Error(`webhook delivery ${delivery.id} to ${delivery.url}: ${error}`);
  }
}
