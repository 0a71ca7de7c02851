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

export type PendingDelivery = {
  id: string;
  status: DeliveryRow['status'];
  event_type: string;
  url: string;
  secret: string;
  event_id: string;
  kind: string;
  waitlist_position: number | null;
  event_at: Date;
  registration_id: string;
  name: string;
  email: string;
  course_id: string;
  course_title: string;
};

export async function loadDelivery(sql: Sql, deliveryId: string): Promise<PendingDelivery | undefined> {
  const [row] = await sql<PendingDelivery[]>`
    SELECT d.id, d.status, d.event_type, w.url, w.secret, e.id::text AS event_id, e.kind,
      e.waitlist_position, e.created_at AS event_at, r.id AS registration_id, r.name, r.email,
      c.id AS course_id, c.title AS course_title
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    JOIN registration_events e ON e.id = d.event_id
    JOIN registrations r ON r.id = e.registration_id
    JOIN courses c ON c.id = e.course_id
    WHERE d.id = ${deliveryId}`;
  return row;
}

export async function recordDeliveryAttempt(sql: Sql, attempt: { id: string; status: DeliveryRow['status']; attempts: number; statusCode: number | null; error: string | null }): Promise<void> {
  await sql`
    UPDATE webhook_deliveries SET status = ${attempt.status}, attempts = ${attempt.attempts},
      last_status_code = ${attempt.statusCode}, last_error = ${attempt.error}, updated_at = now()
    WHERE id = ${attempt.id}`;
}
