-- Everything a registration change sets in motion: its event, the manage token its email
-- carries, the email job, and one webhook delivery job per subscribed endpoint. All of it is
-- written by registrar_record_event, inside the transaction of the change itself: committed
-- means it will be delivered; rolled back means it never existed.

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

CREATE FUNCTION registrar_webhook_event_type(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_kind
    WHEN 'enrolled' THEN 'registration.created'
    WHEN 'waitlisted' THEN 'registration.created'
    WHEN 'promoted' THEN 'registration.promoted'
    WHEN 'cancelled' THEN 'registration.cancelled'
  END
$$;

-- Jobs of a batch (an import's), added together at the end of the batch with one
-- graphile_worker.add_jobs call instead of one add_job per row: add_job NOTIFYs every time, and
-- NOTIFY costs at commit. Rows live for the transaction only.
CREATE FUNCTION registrar_queue_job(p_identifier text, p_payload json, p_max_attempts integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('registrar.batch_jobs', true) = 'on' THEN
    INSERT INTO registrar_batched_jobs (identifier, payload, max_attempts) VALUES (p_identifier, p_payload, p_max_attempts);
  ELSE
    PERFORM graphile_worker.add_job(p_identifier, p_payload, max_attempts => p_max_attempts);
  END IF;
END
$$;

-- Starts batching jobs in this transaction (see registrar_queue_job).
CREATE FUNCTION registrar_begin_job_batch() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS registrar_batched_jobs (identifier text, payload json, max_attempts integer) ON COMMIT DELETE ROWS;
  PERFORM set_config('registrar.batch_jobs', 'on', true);
END
$$;

-- Adds the batched jobs, in the order they were queued, with one add_jobs call.
CREATE FUNCTION registrar_end_job_batch() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('registrar.batch_jobs', 'off', true);
  PERFORM graphile_worker.add_jobs(ARRAY(
    SELECT ROW(identifier, payload, NULL, NULL, max_attempts, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM registrar_batched_jobs));
  DELETE FROM registrar_batched_jobs;
END
$$;

-- Records an event with everything it sets in motion, in the caller's transaction.
-- p_manage_token: the token to put in the email (the creation token); NULL makes a fresh one
-- (two v4 UUIDs: 244 bits from the server's strong random source).
CREATE FUNCTION registrar_record_event(p_registration registrations, p_kind text, p_position integer, p_manage_token text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_event_id bigint;
  v_token text := coalesce(p_manage_token, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
  v_webhook record;
  v_delivery_id uuid;
BEGIN
  INSERT INTO registration_events (registration_id, course_id, kind, waitlist_position)
  VALUES (p_registration.id, p_registration.course_id, p_kind, p_position)
  RETURNING id INTO v_event_id;
  INSERT INTO manage_tokens (token_hash, registration_id)
  VALUES (sha256(convert_to(v_token, 'UTF8')), p_registration.id);
  -- The token rides in the job until the email is sent; the job row is deleted then.
  PERFORM registrar_queue_job('send_email', json_build_object('eventId', v_event_id, 'manageToken', v_token), 25);
  FOR v_webhook IN
    SELECT id FROM webhooks WHERE registrar_webhook_event_type(p_kind) = ANY (events)
  LOOP
    INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
    VALUES (v_webhook.id, v_event_id, registrar_webhook_event_type(p_kind))
    RETURNING id INTO v_delivery_id;
    PERFORM registrar_queue_job('deliver_webhook', json_build_object('deliveryId', v_delivery_id), 12);
  END LOOP;
END
$$;
