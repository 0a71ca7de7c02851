// SQL for webhooks: subscriptions, and the delivery log that the deliver_webhook task writes.
import type { Sql } from '../database.ts';

export type WebhookRow = { id: string; url: string; events: string[]; secret: string; created_at: Date };

export async function insertWebhook(sql: Sql, webhook: { url: string; events: string[]; secret: string }): Promise<WebhookRow> {
  const [row] = await sql<WebhookRow[]>`
    INSERT INTO webhooks (url, events, secret) VALUES (${webhook.url}, ${webhook.events}, ${webhook.secret})
    RETURNING id, url, events, secret, created_at`;
  if (!row) throw new Error('insert into webhooks returned no row');
  return row;
}

export async function listWebhooks(sql: Sql): Promise<WebhookRow[]> {
  return sql<WebhookRow[]>`SELECT id, url, events, secret, created_at FROM webhooks ORDER BY created_at, id`;
}

export async function findWebhook(sql: Sql, id: string): Promise<WebhookRow | undefined> {
  const [row] = await sql<WebhookRow[]>`SELECT id, url, events, secret, created_at FROM webhooks WHERE id = ${id}`;
  return row;
}

/** Deleting a webhook deletes its log; its pending jobs then find nothing and end. */
export async function deleteWebhook(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`DELETE FROM webhooks WHERE id = ${id} RETURNING id`;
  return rows.length > 0;
}

export type DeliveryRow = {
  id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
};

export async function listDeliveries(sql: Sql, webhookId: string, limit: number): Promise<DeliveryRow[]> {
  return sql<DeliveryRow[]>`
    SELECT id, event_id::text, event_type, status, attempts, last_status_code, last_error, created_at, updated_at
    FROM webhook_deliveries WHERE webhook_id = ${webhookId} ORDER BY created_at DESC, id LIMIT ${limit}`;
}

/** The common part of a delivery still to be posted: where, signed with what, about which course. */
type DeliveryTarget = {
  id: string;
  status: DeliveryRow['status'];
  event_type: string;
  url: string;
  secret: string;
  event_id: string;
  kind: string;
  event_at: Date;
  name: string;
  email: string;
  course_id: string;
  course_title: string;
};

/** A delivery of a registration event, or of a queue place's event (registration_id null, place_id set). */
export type PendingDelivery = DeliveryTarget & (
  | { registration_id: string; waitlist_position: number | null; place_id: null; admitted_until: null; verifies: false }
  /** verifies: the place was unverified when the event was written. */
  | { registration_id: null; waitlist_position: null; place_id: string; admitted_until: Date | null; verifies: boolean }
);

/**
 * The delivery and its event, a registration's or a queue place's: the two share one id space
 * (registration_events' sequence), so the delivery's event id names one of them.
 */
export async function loadDelivery(sql: Sql, deliveryId: string): Promise<PendingDelivery | undefined> {
  const [row] = await sql<PendingDelivery[]>`
    SELECT d.id, d.status, d.event_type, w.url, w.secret, x.*
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    CROSS JOIN LATERAL (
      SELECT e.id::text AS event_id, e.kind, e.created_at AS event_at, r.name, r.email, c.id AS course_id,
        c.title AS course_title, r.id::text AS registration_id, e.waitlist_position, NULL::text AS place_id,
        NULL::timestamptz AS admitted_until, false AS verifies
      FROM registration_events e
      JOIN registrations r ON r.id = e.registration_id
      JOIN courses c ON c.id = e.course_id
      WHERE e.id = d.event_id
      UNION ALL
      SELECT e.id::text, e.kind, e.created_at, q.name, q.email, c.id, c.title, NULL, NULL, q.id::text, q.admitted_until, e.verifies
      FROM queue_events e
      JOIN queue_places q ON q.id = e.place_id
      JOIN courses c ON c.id = q.course_id
      WHERE e.id = d.event_id
    ) x
    WHERE d.id = ${deliveryId}`;
  return row;
}

export async function recordDeliveryAttempt(sql: Sql, attempt: { id: string; status: DeliveryRow['status']; attempts: number; statusCode: number | null; error: string | null }): Promise<void> {
  await sql`
    UPDATE webhook_deliveries SET status = ${attempt.status}, attempts = ${attempt.attempts},
      last_status_code = ${attempt.statusCode}, last_error = ${attempt.error}, updated_at = now()
    WHERE id = ${attempt.id}`;
}
