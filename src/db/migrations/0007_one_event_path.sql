-- One path for what a registration change sets in motion. registrar_record_event (0002), still
-- called for one change at a time (a cancel, a promotion), becomes a batch of one of
-- registrar_record_events (0006): the same event row, manage token, email job and webhook
-- deliveries, written by a single definition. The job batching of 0002 (a temporary table filled
-- by registrar_queue_job, flushed by registrar_end_job_batch) has no caller left since 0006.
-- The webhook deliveries are those of the events just recorded (0006 took every event of the
-- registrations, which for a registration changed again, a promotion or a cancel, included its
-- earlier events).
CREATE OR REPLACE FUNCTION registrar_record_events(p_registration_ids uuid[], p_course_ids text[], p_kinds text[], p_positions integer[], p_tokens text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = auto SET enable_seqscan = off AS $$
DECLARE
  v_event_ids bigint[];
  v_emails json;
  v_webhooks json;
BEGIN
  WITH events AS (
    INSERT INTO registration_events (registration_id, course_id, kind, waitlist_position)
    SELECT n.id, n.course_id, n.kind, n.position
    FROM unnest(p_registration_ids, p_course_ids, p_kinds, p_positions) WITH ORDINALITY AS n (id, course_id, kind, position, o)
    ORDER BY n.o
    RETURNING id, registration_id
  ), tokens AS (
    INSERT INTO manage_tokens (token_hash, registration_id)
    SELECT sha256(convert_to(t.token, 'UTF8')), t.id FROM unnest(p_registration_ids, p_tokens) AS t (id, token)
  )
  SELECT array_agg(e.id ORDER BY e.id), json_agg(json_build_object('eventId', e.id, 'manageToken', t.token) ORDER BY e.id)
  INTO v_event_ids, v_emails
  FROM events e JOIN unnest(p_registration_ids, p_tokens) AS t (id, token) ON t.id = e.registration_id;
  PERFORM graphile_worker.add_job('send_email', v_emails, max_attempts => 25);

  IF EXISTS (SELECT 1 FROM webhooks) THEN
    WITH deliveries AS (
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
      SELECT w.id, e.id, registrar_webhook_event_type(e.kind)
      FROM registration_events e JOIN webhooks w ON registrar_webhook_event_type(e.kind) = ANY (w.events)
      WHERE e.id = ANY (v_event_ids)
      ORDER BY e.id
      RETURNING id
    )
    SELECT json_agg(json_build_object('deliveryId', id)) INTO v_webhooks FROM deliveries;
    IF v_webhooks IS NOT NULL THEN
      PERFORM graphile_worker.add_job('deliver_webhook', v_webhooks, max_attempts => 12);
    END IF;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION registrar_record_event(p_registration registrations, p_kind text, p_position integer, p_manage_token text)
RETURNS void LANGUAGE sql AS $$
  -- p_manage_token: the token to put in the email (the creation token); NULL makes a fresh one
  -- (two v4 UUIDs: 244 bits from the server's strong random source).
  SELECT registrar_record_events(ARRAY[p_registration.id], ARRAY[p_registration.course_id], ARRAY[p_kind], ARRAY[p_position],
    ARRAY[coalesce(p_manage_token, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))])
$$;

DROP FUNCTION registrar_end_job_batch();
DROP FUNCTION registrar_begin_job_batch();
DROP FUNCTION registrar_queue_job(text, json, integer);
