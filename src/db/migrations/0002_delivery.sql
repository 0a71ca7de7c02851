-- Everything a registration change sets in motion: its event, the manage token its email
-- carries, the email job, and one webhook delivery job per subscribed endpoint. All of it is
-- written by registrar_record_event, inside the transaction of the change itself: committed
-- means it will be delivered; rolled back means it never existed.
-- registrar_record_event and registrar_webhook_event_type: src/db/functions/record-events.sql.

-- One row per change a student hears about.
CREATE TABLE registration_events (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  registration_id   uuid NOT NULL REFERENCES registrations (id),
  course_id         text NOT NULL REFERENCES courses (id),
  kind              text NOT NULL CHECK (kind IN ('enrolled', 'waitlisted', 'promoted', 'cancelled')),
  waitlist_position integer,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registration_events_by_registration ON registration_events (registration_id);
CREATE INDEX registration_events_by_course ON registration_events (course_id);

-- Manage tokens, stored as SHA-256 only. A registration gets one at creation (the token in the
-- 201 answer, also in its first email) and a fresh one with each later email, since the
-- service cannot read an earlier token back. Any of them manages the registration.
CREATE TABLE manage_tokens (
  token_hash      bytea PRIMARY KEY,
  registration_id uuid NOT NULL REFERENCES registrations (id),
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX manage_tokens_by_registration ON manage_tokens (registration_id);

-- The outcome of each email: written by the send_email task. 'sent' is recorded right after
-- the SMTP server accepts the message, so a job re-run after a crash finds it and does not send
-- again; only a crash between acceptance and this write can send twice (same Message-ID).
CREATE TABLE email_deliveries (
  event_id     bigint PRIMARY KEY REFERENCES registration_events (id),
  recipient    text NOT NULL,
  message_id   text NOT NULL,
  status       text NOT NULL CHECK (status IN ('sent', 'failed')),
  attempts     integer NOT NULL,
  last_error   text,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_deliveries_failed ON email_deliveries (updated_at) WHERE status = 'failed';

-- The built-in mailbox: with no SMTP_URL, "sending" is a row here (once per event).
CREATE TABLE mailbox (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id    bigint NOT NULL UNIQUE REFERENCES registration_events (id),
  message_id  text NOT NULL,
  sender      text NOT NULL,
  recipient   text NOT NULL,
  recipient_key text NOT NULL,
  subject     text NOT NULL,
  text_body   text NOT NULL,
  html_body   text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailbox_by_recipient ON mailbox (recipient_key, id);

CREATE TABLE webhooks (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  url         text NOT NULL,
  events      text[] NOT NULL,
  -- Standard Webhooks signing secret ("whsec_" + base64); needed in clear to sign.
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, webhook): the delivery log. webhook-id = this row's id, stable across
-- retries, so a receiver can drop a duplicate.
CREATE TABLE webhook_deliveries (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id         bigint NOT NULL REFERENCES registration_events (id),
  event_type       text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);

-- Liveness of job workers, so the jobs of a worker that died (kill -9, lost machine) are
-- unlocked within seconds instead of graphile-worker's default of four hours.
CREATE TABLE job_worker_heartbeats (
  worker_id   text PRIMARY KEY,
  pid         integer NOT NULL,
  seen_at     timestamptz NOT NULL DEFAULT now()
);
