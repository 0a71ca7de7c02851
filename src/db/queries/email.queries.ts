// SQL for emails: the event an email is about (a registration's or a queue place's), the outcome
// of sending it, the built-in mailbox.
import type { Sql } from '../database.ts';

/** 'reminder': someone tried to register this address again (POST /register answered 200);
 * 'offered' ... 'expired': a waitlist offer (src/db/functions/offers.sql). */
export type EmailKind = 'enrolled' | 'waitlisted' | 'promoted' | 'cancelled' | 'reminder' | 'offered' | 'accepted' | 'declined' | 'expired';

export type EmailEvent = {
  eventId: string;
  kind: EmailKind;
  registrationId: string;
  name: string;
  email: string;
  courseId: string;
  courseTitle: string;
  waitlistPosition: number | null;
  /** The deadline of an 'offered' event's offer; null for every other kind. */
  offerUntil: Date | null;
};

/** The waiting room's emails (src/db/functions/queue-emails.sql): 'link' is the link sent again on a second join. */
export type QueueEmailKind = 'joined' | 'link' | 'admitted' | 'sold-out' | 'closed';

export type QueueEmailEvent = {
  eventId: string;
  kind: QueueEmailKind;
  placeId: string;
  name: string;
  email: string;
  courseId: string;
  courseTitle: string;
  /** Set once the place is admitted; it never changes after. */
  admittedUntil: Date | null;
  /** The place was unverified when the email was written: its link confirms the address. */
  verifies: boolean;
};

type EmailEventRow = {
  source: 'registration' | 'queue';
  event_id: string;
  kind: string;
  subject_id: string;
  name: string;
  email: string;
  course_id: string;
  course_title: string;
  waitlist_position: number | null;
  admitted_until: Date | null;
  offer_until: Date | null;
  verifies: boolean;
  delivery_status: 'sent' | 'failed' | null;
};

export type EmailEventState = (EmailEvent | QueueEmailEvent) & { deliveryStatus: 'sent' | 'failed' | null };

/**
 * The events emails are about, a registration's or a queue place's, by id, in one statement for
 * a batch of emails: the two share one id space (registration_events' sequence), so an id names
 * one of them. Both halves are primary-key probes. An id with no event is absent from the map.
 */
export async function loadEmailEvents(sql: Sql, eventIds: readonly string[]): Promise<Map<string, EmailEventState>> {
  const ids = [...new Set(eventIds)];
  const rows = await sql<EmailEventRow[]>`
    SELECT 'registration' AS source, e.id::text AS event_id, e.kind, e.registration_id::text AS subject_id, r.name, r.email,
      e.course_id, c.title AS course_title, e.waitlist_position, NULL::timestamptz AS admitted_until, e.offer_until, false AS verifies,
      d.status AS delivery_status
    FROM registration_events e
    JOIN registrations r ON r.id = e.registration_id
    JOIN courses c ON c.id = e.course_id
    LEFT JOIN email_deliveries d ON d.event_id = e.id
    WHERE e.id = ANY (${ids}::bigint[])
    UNION ALL
    SELECT 'queue', e.id::text, e.kind, e.place_id::text, q.name, q.email,
      q.course_id, c.title, NULL, q.admitted_until, NULL, e.verifies,
      d.status
    FROM queue_events e
    JOIN queue_places q ON q.id = e.place_id
    JOIN courses c ON c.id = q.course_id
    LEFT JOIN email_deliveries d ON d.event_id = e.id
    WHERE e.id = ANY (${ids}::bigint[])`;
  return new Map(rows.map((row) => [row.event_id, toEmailEvent(row)]));
}

function toEmailEvent(row: EmailEventRow): EmailEventState {
  const common = { eventId: row.event_id, name: row.name, email: row.email, courseId: row.course_id, courseTitle: row.course_title, deliveryStatus: row.delivery_status };
  if (row.source === 'queue') {
    return { ...common, kind: row.kind as QueueEmailKind, placeId: row.subject_id, admittedUntil: row.admitted_until, verifies: row.verifies };
  }
  return { ...common, kind: row.kind as EmailKind, registrationId: row.subject_id, waitlistPosition: row.waitlist_position, offerUntil: row.offer_until };
}

export type EmailOutcomeRow = { eventId: string; recipient: string; messageId: string; status: 'sent' | 'failed'; attempts: number; error: string | null };

/** The outcomes of a batch of emails, one statement; the last outcome given for an event wins. */
export async function recordEmailOutcomes(sql: Sql, outcomes: readonly EmailOutcomeRow[]): Promise<void> {
  // ON CONFLICT DO UPDATE may touch a row once per statement: one outcome per event.
  const rows = [...new Map(outcomes.map((o) => [o.eventId, o])).values()];
  await sql`
    INSERT INTO email_deliveries (event_id, recipient, message_id, status, attempts, last_error)
    SELECT * FROM unnest(${rows.map((o) => o.eventId)}::bigint[], ${rows.map((o) => o.recipient)}::text[], ${rows.map((o) => o.messageId)}::text[],
      ${rows.map((o) => o.status)}::text[], ${rows.map((o) => o.attempts)}::int[], ${rows.map((o) => o.error)}::text[])
    ON CONFLICT (event_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
      last_error = excluded.last_error, updated_at = now()`;
}

export type MailboxEntry = { eventId: string; message: { messageId: string; from: string; to: string; subject: string; text: string; html: string } };

/** Stores emails (src/domain/email-message.ts) once per event, a batch in one statement: a second insert for an event stores nothing. */
export async function insertMailboxMessages(sql: Sql, entries: readonly MailboxEntry[]): Promise<void> {
  const column = (pick: (entry: MailboxEntry) => string) => entries.map(pick);
  await sql`
    INSERT INTO mailbox (event_id, message_id, sender, recipient, recipient_key, subject, text_body, html_body)
    SELECT * FROM unnest(${column((e) => e.eventId)}::bigint[], ${column((e) => e.message.messageId)}::text[], ${column((e) => e.message.from)}::text[],
      ${column((e) => e.message.to)}::text[], ${column((e) => e.message.to.trim().toLowerCase())}::text[],
      ${column((e) => e.message.subject)}::text[], ${column((e) => e.message.text)}::text[], ${column((e) => e.message.html)}::text[])
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
