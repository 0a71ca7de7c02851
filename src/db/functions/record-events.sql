-- What a registration change sets in motion: its event, its manage token, its email job and its
-- webhook deliveries, written in the caller's transaction (committed means it will be delivered).
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_webhook_event_type(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_kind
    WHEN 'enrolled' THEN 'registration.created'
    WHEN 'waitlisted' THEN 'registration.created'
    WHEN 'promoted' THEN 'registration.promoted'
    WHEN 'cancelled' THEN 'registration.cancelled'
    -- A waitlist offer's events (offers.sql).
    WHEN 'offered' THEN 'registration.offered'
    WHEN 'accepted' THEN 'registration.offer-accepted'
    WHEN 'declined' THEN 'registration.offer-declined'
    WHEN 'expired' THEN 'registration.offer-expired'
    -- A queue place's events (queue_events, src/db/functions/queue-emails.sql); the link sent
    -- again changes nothing, so it has no type, as a reminder has none.
    WHEN 'joined' THEN 'queue.joined'
    WHEN 'admitted' THEN 'queue.admitted'
    WHEN 'sold-out' THEN 'queue.sold-out'
  END
$$;

-- p_tokens: the manage token each email carries (a registration's creation token); a NULL one,
-- or a NULL array, makes a fresh token. p_positions: the waitlist position of each, or NULL.
-- p_actor and p_reasons: who made the changes and why each was made, the history's entries
-- (invariant 10: one event per change, in the change's transaction); NULL for a reminder,
-- which changes nothing.
CREATE OR REPLACE FUNCTION registrar_record_events(p_registration_ids uuid[], p_course_ids text[], p_kinds text[], p_positions integer[], p_tokens text[],
  p_actor text, p_reasons text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
  v_tokens text[];
  v_event_ids bigint[];
  v_emails json;
  v_webhooks json;
BEGIN
  -- A fresh token is two v4 UUIDs: 244 bits from the server's strong random source.
  v_tokens := ARRAY(SELECT coalesce(p_tokens[i], replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
    FROM generate_subscripts(p_registration_ids, 1) AS i ORDER BY i);
  WITH events AS (
    INSERT INTO registration_events (registration_id, course_id, kind, waitlist_position, actor, reason)
    SELECT n.id, n.course_id, n.kind, n.position, p_actor, n.reason
    FROM unnest(p_registration_ids, p_course_ids, p_kinds, p_positions, p_reasons) WITH ORDINALITY AS n (id, course_id, kind, position, reason, o)
    ORDER BY n.o
    RETURNING id, registration_id
  ), tokens AS (
    INSERT INTO manage_tokens (token_hash, registration_id)
    SELECT sha256(convert_to(t.token, 'UTF8')), t.id FROM unnest(p_registration_ids, v_tokens) AS t (id, token)
  )
  SELECT array_agg(e.id ORDER BY e.id), json_agg(json_build_object('eventId', e.id, 'manageToken', t.token) ORDER BY e.id)
  INTO v_event_ids, v_emails
  FROM events e JOIN unnest(p_registration_ids, v_tokens) AS t (id, token) ON t.id = e.registration_id;
  -- add_jobs straight: add_job is a PL/pgSQL wrapper that builds this one spec and calls it.
  PERFORM graphile_worker.add_jobs(ARRAY[ROW('send_email', v_emails, NULL, NULL, 25, NULL, NULL, NULL)::graphile_worker.job_spec]);

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
      PERFORM graphile_worker.add_jobs(ARRAY[ROW('deliver_webhook', v_webhooks, NULL, NULL, 12, NULL, NULL, NULL)::graphile_worker.job_spec]);
    END IF;
  END IF;
END
$$;
