-- The waiting room's emails: each a queue event, a token of its own and a send_email job entry
-- (and its webhook deliveries), written in the caller's transaction (the join, the admission
-- tick): committed means it will be sent, once. docs/design.md, "The waiting room".
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- The SHA-256 of the admission token derived from a queue token, as admissionTokenFor
-- (src/security/tokens.ts) derives it: base64url, unpadded, of SHA-256("registrar admission\0" ||
-- token). For the tokens made here, in SQL; the two must agree (an emailed token's admission
-- registers: test/integration/waiting-room-emails.test.ts). STABLE, as convert_to is: a SQL
-- function declared stricter than its body runs as a call of its own per row instead of being
-- inlined into the statement that uses it.
CREATE OR REPLACE FUNCTION registrar_admission_hash(p_queue_token text) RETURNS bytea
LANGUAGE sql STABLE AS $$
  SELECT sha256(convert_to(rtrim(translate(encode(
    sha256('\x7265676973747261722061646d697373696f6e00'::bytea || convert_to(p_queue_token, 'UTF8')),
    'base64'), '+/', '-_'), '='), 'UTF8'))
$$;

-- The entries per send_email (or deliver_webhook) job: a sold-out tick may write thousands at
-- once, and one job of a few hundred entries is one row, one fetch and one completion
-- (src/jobs/job-entries.ts).
CREATE OR REPLACE FUNCTION registrar_queue_emails_per_job() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 200 $$;

-- One email of kind p_kind to each of these places (each at most once in the array): a fresh
-- token per email (two v4 UUIDs: 244 bits from the server's strong random source), stored as its
-- hash with its admission's hash and marked emailed (it verifies), an event, and the job entries
-- that carry the token to the email's link (the job's completion deletes it from its payload);
-- and for each webhook subscribed to the event's type (registrar_webhook_event_type,
-- record-events.sql), a delivery and its deliver_webhook entry. Both in jobs of
-- registrar_queue_emails_per_job() entries.
CREATE OR REPLACE FUNCTION registrar_queue_email(p_place_ids uuid[], p_kind text, p_verifies boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
  v_tokens text[];
  v_event_ids bigint[];
  v_event_tokens text[];
  v_type text := registrar_webhook_event_type(p_kind);
  v_deliveries uuid[];
BEGIN
  IF coalesce(cardinality(p_place_ids), 0) = 0 THEN RETURN; END IF;
  v_tokens := ARRAY(SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
    FROM generate_subscripts(p_place_ids, 1) AS i ORDER BY i);
  INSERT INTO queue_tokens (token_hash, place_id, admission_hash, emailed)
  SELECT sha256(convert_to(t.token, 'UTF8')), t.place, registrar_admission_hash(t.token), true
  FROM unnest(p_place_ids, v_tokens) AS t (place, token);
  WITH events AS (
    INSERT INTO queue_events (place_id, kind, verifies)
    SELECT place, p_kind, p_verifies FROM unnest(p_place_ids) WITH ORDINALITY AS p (place, o) ORDER BY p.o
    RETURNING id, place_id
  )
  SELECT array_agg(e.id ORDER BY e.id), array_agg(t.token ORDER BY e.id) INTO v_event_ids, v_event_tokens
  FROM events e JOIN unnest(p_place_ids, v_tokens) AS t (place, token) ON t.place = e.place_id;
  PERFORM graphile_worker.add_jobs(ARRAY(
    SELECT ROW('send_email', json_agg(json_build_object('eventId', x.id, 'queueToken', x.token) ORDER BY x.o),
      NULL, NULL, 25, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM unnest(v_event_ids, v_event_tokens) WITH ORDINALITY AS x (id, token, o)
    GROUP BY (x.o - 1) / registrar_queue_emails_per_job()));

  IF v_type IS NOT NULL AND EXISTS (SELECT 1 FROM webhooks w WHERE v_type = ANY (w.events)) THEN
    WITH deliveries AS (
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
      SELECT w.id, e.id, v_type FROM unnest(v_event_ids) AS e (id) CROSS JOIN webhooks w
      WHERE v_type = ANY (w.events)
      ORDER BY e.id
      RETURNING id
    )
    SELECT array_agg(id) INTO v_deliveries FROM deliveries;
    PERFORM graphile_worker.add_jobs(ARRAY(
      SELECT ROW('deliver_webhook', json_agg(json_build_object('deliveryId', x.id) ORDER BY x.o),
        NULL, NULL, 12, NULL, NULL, NULL)::graphile_worker.job_spec
      FROM unnest(v_deliveries) WITH ORDINALITY AS x (id, o)
      GROUP BY (x.o - 1) / registrar_queue_emails_per_job()));
  END IF;
END
$$;
