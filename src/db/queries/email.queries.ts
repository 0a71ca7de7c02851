// SQL for emails: the event an email is about, the outcome of sending it, the built-in mailbox.
import type { Sql } from '../database.ts';

/** 'reminder': someone tried to register this address again (POST /register answered 200). */
export type EmailKind = 'enrolled' | 'waitlisted' | 'promoted' | 'cancelled' | 'reminder';

export type EmailEvent = {
  eventId: string;
  kind: EmailKind;
  registrationId: string;
  name: string;
  email: string;
  courseId: string;
  courseTitle: string;
  waitlistPosition: number | null;
};

type EmailEventRow = {
  event_id: string;
  kind: EmailKind;
  registration_id: string;
  name: string;
  email: string;
  course_id: string;
  course_title: string;
  waitlist_position: number | null;
  delivery_status: 'sent' | 'failed' | null;
};

export async function loadEmailEvent(sql: Sql, eventId: string): Promise<(EmailEvent & { deliveryStatus: 'sent' | 'failed' | null }) | undefined> {
  const [row] = await sql<EmailEventRow[]>`
    SELECT e.id::text AS event_id, e.kind, e.registration_id, r.name, r.email, e.course_id,
      c.title AS course_title, e.waitlist_position, d.status AS delivery_status
    FROM registration_events e
    JOIN registrations r ON r.id = e.registration_id
    JOIN courses c ON c.id = e.course_id
    LEFT JOIN email_deliveries d ON d.event_id = e.id
    WHERE e.id = ${eventId}`;
  if (!row) return undefined;
  return {
    eventId: row.event_id,
    kind: row.kind,
    registrationId: row.registration_id,
    name: row.name,
    email: row.email,
    courseId: row.course_id,
    courseTitle: row.course_title,
    waitlistPosition: row.waitlist_position,
    deliveryStatus: row.delivery_status,
  };
}

export async function recordEmailOutcome(sql: Sql, outcome: { eventId: string; recipient: string; messageId: string; status: 'sent' | 'failed'; attempts: number; error: string | null }): Promise<void> {
  await sql`
    INSERT INTO email_deliveries (event_id, recipient, message_id, status, attempts, last_error)
    VALUES (${outcome.eventId}, ${outcome.recipient}, ${outcome.messageId}, ${outcome.status}, ${outcome.attempts}, ${outcome.error})
    ON CONFLICT (event_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
      last_error = excluded.last_error, updated_at = now()`;
}

/** Stores an email (src/domain/email-message.ts) once per event: a second insert for the event stores nothing. */
export async function insertMailboxMessage(sql: Sql, eventId: string, message: { messageId: string; from: string; to: string; subject: string; text: string; html: string }): Promise<void> {
  await sql`
    INSERT INTO mailbox (event_id, message_id, sender, recipient, recipient_key, subject, text_body, html_body)
    VALUES (${eventId}, ${message.messageId}, ${message.from}, ${message.to}, ${message.to.trim().toLowerCase()},
      ${message.subject}, ${message.text}, ${message.html})
    ON CONFLICT (event_id) DO NOTHING`;
}

export type MailboxRow = {
  id: string;
  message_id: string;
  sender: string;
  recipient: string;
  subject: string;
  text_body: string;
  html_body: string;
  created_at: Date;
};

/** Newest first; `beforeId` is the cursor (the id of the last message of the previous page). */
export async function listMailbox(sql: Sql, filter: { recipient: string | null; beforeId: string | null; limit: number }): Promise<MailboxRow[]> {
  return sql<MailboxRow[]>`
    SELECT id::text, message_id, sender, recipient, subject, text_body, html_body, created_at
    FROM mailbox
    WHERE (${filter.recipient}::text IS NULL OR recipient_key = lower(trim(${filter.recipient}::text)))
      AND (${filter.beforeId}::bigint IS NULL OR id < ${filter.beforeId}::bigint)
    ORDER BY id DESC
    LIMIT ${filter.limit}`;
}

export type FailedEmailRow = { event_id: string; recipient: string; message_id: string; attempts: number; last_error: string | null; updated_at: Date };

export async function listFailedEmails(sql: Sql, limit: number): Promise<FailedEmailRow[]> {
  return sql<FailedEmailRow[]>`
    SELECT event_id::text, recipient, message_id, attempts, last_error, updated_at
    FROM email_deliveries WHERE status = 'failed' ORDER BY updated_at DESC LIMIT ${limit}`;
}
