-- Group commit: many registrations in one transaction (docs/design.md, "The hot course").
--
-- Taking a seat with one transaction per registration holds the course's row lock through every
-- commit, so a popular course was served one commit (one WAL flush) at a time, and each
-- registration wrote a new version of the course row. registrar_register_batch handles a whole
-- batch of registrations, in their order of arrival, in one transaction: it locks every course
-- of the batch once (in id order, so two batches cannot deadlock), decides each registration
-- with the counters in memory, writes each course row once, and adds all the batch's jobs with
-- one add_jobs call (one NOTIFY). The rules are exactly those of one registration at a time:
-- members are decided one after another, so a later member sees what an earlier one did (the
-- same student twice in one batch: the second finds the first's registration).

CREATE FUNCTION registrar_register_batch(
  p_courses text[], p_names text[], p_emails text[], p_email_keys text[], p_tokens text[],
  p_key_hashes bytea[], p_request_hashes bytea[], p_sealed_tokens bytea[]
) RETURNS jsonb[] LANGUAGE plpgsql AS $$
DECLARE
  v_count integer := coalesce(array_length(p_courses, 1), 0);
  -- The courses of the batch, locked, in id order, with their counters as the batch changes them.
  v_ids text[];
  v_capacity integer[];
  v_waitlist_capacity integer[];
  v_enrolled integer[];
  v_waitlisted integer[];
  v_open boolean[];
  v_changed boolean[];
  -- Students of the batch registered already: "course\nemail_key" and their rows.
  v_active_keys text[];
  v_active_rows jsonb[];
  -- The registrations this batch creates, in arrival order.
  v_new_members integer[] := '{}';
  v_new_ids uuid[] := '{}';
  v_new_keys text[] := '{}';
  v_new_status registration_status[] := '{}';
  v_new_positions integer[] := '{}';
  v_new_rows jsonb[];
  -- Per member: its result, or the new registration it is (v_new_of) or duplicates (v_dup_of).
  v_results jsonb[] := array_fill(NULL::jsonb, ARRAY[v_count]);
  v_new_of integer[] := array_fill(NULL::integer, ARRAY[v_count]);
  v_dup_of integer[] := array_fill(NULL::integer, ARRAY[v_count]);
  v_key_free boolean[] := '{}';
  v_key idempotency_keys;
  v_student text;
  v_status registration_status;
  v_position integer;
  v_code integer;
  v_c integer;
  v_n integer;
BEGIN
  -- Idempotency keys first, before any course lock: if another request with a key of this batch
  -- is still being handled, that member answers 409 at once (draft-ietf-httpapi-idempotency-
  -- key-header) instead of waiting behind the course lock. The key's lock lives as long as the
  -- transaction.
  FOR i IN 1 .. v_count LOOP
    v_key_free := v_key_free || (p_key_hashes[i] IS NULL
      OR pg_try_advisory_xact_lock(('x' || encode(substr(p_key_hashes[i], 1, 8), 'hex'))::bit(64)::bigint));
  END LOOP;

  SELECT coalesce(array_agg(id ORDER BY id), '{}'), array_agg(capacity ORDER BY id),
         array_agg(waitlist_capacity ORDER BY id), array_agg(enrolled ORDER BY id),
         array_agg(waitlisted ORDER BY id),
         array_agg((opens_at IS NULL OR now() >= opens_at) AND (closes_at IS NULL OR now() < closes_at) ORDER BY id),
         array_agg(false ORDER BY id)
    INTO v_ids, v_capacity, v_waitlist_capacity, v_enrolled, v_waitlisted, v_open, v_changed
    FROM (SELECT * FROM courses WHERE id = ANY (p_courses) ORDER BY id FOR UPDATE) locked;

  -- Under the course locks no other transaction can add or cancel a registration of these
  -- courses, so this read and the inserts below cannot race (the unique index backs it up).
  -- One index probe per student (LIMIT keeps it a probe: a plan cached while the table was
  -- small must not become a scan of the whole index once it is large).
  SELECT coalesce(array_agg(r.course_id || E'\n' || r.email_key), '{}'), array_agg(registrar_registration_row(r))
    INTO v_active_keys, v_active_rows
    FROM (SELECT DISTINCT c, k FROM unnest(p_courses, p_email_keys) AS s (c, k)) s
    CROSS JOIN LATERAL (
      SELECT * FROM registrations r
      WHERE r.course_id = s.c AND r.email_key = s.k AND r.status <> 'cancelled'
      LIMIT 1) r;

  -- Each member in arrival order, with the counters in memory: exactly the rules of one
  -- registration at a time (a later member sees what an earlier one did).
  FOR i IN 1 .. v_count LOOP
    IF p_key_hashes[i] IS NOT NULL THEN
      IF NOT v_key_free[i] THEN
        v_results[i] := jsonb_build_object('outcome', 'key-in-progress');
        CONTINUE;
      END IF;
      INSERT INTO idempotency_keys (key_hash, request_hash) VALUES (p_key_hashes[i], p_request_hashes[i])
      ON CONFLICT (key_hash) DO NOTHING;
      IF NOT FOUND THEN
        SELECT * INTO STRICT v_key FROM idempotency_keys WHERE key_hash = p_key_hashes[i];
        IF v_key.status_code IS NULL THEN
          -- The same key earlier in this batch, not finished yet: in progress, as if concurrent.
          v_results[i] := jsonb_build_object('outcome', 'key-in-progress');
        ELSIF v_key.request_hash <> p_request_hashes[i] THEN
          v_results[i] := jsonb_build_object('outcome', 'key-reused');
        ELSE
          -- Once an earlier request with this key has committed, its stored answer is replayed; an
          -- attempt that ended in an error deleted its key row, so a retry proceeds as a fresh one.
          v_results[i] := jsonb_build_object('outcome', 'replay', 'statusCode', v_key.status_code,
            'registration', v_key.registration, 'sealedToken', encode(v_key.sealed_token, 'base64'));
        END IF;
        CONTINUE;
      END IF;
    END IF;

    v_c := array_position(v_ids, p_courses[i]);
    v_student := p_courses[i] || E'\n' || p_email_keys[i];
    IF v_c IS NULL THEN
      v_results[i] := jsonb_build_object('outcome', 'course-not-found');
    ELSIF v_student = ANY (v_active_keys) THEN
      v_results[i] := jsonb_build_object('outcome', 'existing', 'registration', v_active_rows[array_position(v_active_keys, v_student)]);
    ELSIF v_student = ANY (v_new_keys) THEN
      v_dup_of[i] := array_position(v_new_keys, v_student);
    ELSIF NOT v_open[v_c] THEN
      v_results[i] := jsonb_build_object('outcome', 'registration-closed');
    ELSE
      v_status := NULL;
      v_position := NULL;
      IF v_enrolled[v_c] < v_capacity[v_c] THEN
        v_status := 'enrolled';
        v_enrolled[v_c] := v_enrolled[v_c] + 1;
      ELSIF v_waitlisted[v_c] < v_waitlist_capacity[v_c] THEN
        v_status := 'waitlisted';
        v_waitlisted[v_c] := v_waitlisted[v_c] + 1;
        v_position := v_waitlisted[v_c];
      END IF;
      IF v_status IS NULL THEN
        v_results[i] := jsonb_build_object('outcome', 'course-full');
      ELSE
        v_changed[v_c] := true;
        v_new_members := v_new_members || i;
        v_new_ids := v_new_ids || gen_random_uuid();
        v_new_keys := v_new_keys || v_student;
        v_new_status := v_new_status || v_status;
        v_new_positions := v_new_positions || v_position;
        v_new_of[i] := cardinality(v_new_members);
      END IF;
    END IF;
    -- Error answers are not the key's result: a retry may succeed once a seat frees up.
    IF p_key_hashes[i] IS NOT NULL AND v_results[i] IS NOT NULL AND v_results[i] ->> 'outcome' <> 'existing' THEN
      DELETE FROM idempotency_keys WHERE key_hash = p_key_hashes[i];
    END IF;
  END LOOP;

  v_n := cardinality(v_new_members);
  IF v_n > 0 THEN
    -- All the new registrations, their events, manage tokens, email jobs and webhook deliveries:
    -- a few set-based statements for the whole batch instead of several per registration.
    -- seq follows arrival order (rows are inserted in the order of the SELECT).
    WITH inserted AS (
      INSERT INTO registrations (id, course_id, name, email, email_key, status)
      SELECT n.id, p_courses[n.m], p_names[n.m], p_emails[n.m], p_email_keys[n.m], n.status
      FROM unnest(v_new_ids, v_new_members, v_new_status) WITH ORDINALITY AS n (id, m, status, o)
      ORDER BY n.o
      RETURNING *
    )
    SELECT array_agg(registrar_registration_row(r, n.position) ORDER BY n.o) INTO v_new_rows
    FROM inserted r JOIN unnest(v_new_ids, v_new_positions) WITH ORDINALITY AS n (id, position, o) ON n.id = r.id;

    PERFORM registrar_record_events(v_new_ids,
      (SELECT array_agg(p_courses[m] ORDER BY o) FROM unnest(v_new_members) WITH ORDINALITY AS n (m, o)),
      (SELECT array_agg(s::text ORDER BY o) FROM unnest(v_new_status) WITH ORDINALITY AS n (s, o)),
      v_new_positions, (SELECT array_agg(p_tokens[m] ORDER BY o) FROM unnest(v_new_members) WITH ORDINALITY AS n (m, o)));
  END IF;

  FOR i IN 1 .. v_count LOOP
    IF v_new_of[i] IS NOT NULL THEN
      v_results[i] := jsonb_build_object('outcome', 'created', 'registration', v_new_rows[v_new_of[i]]);
      v_code := 201;
    ELSIF v_dup_of[i] IS NOT NULL THEN
      v_results[i] := jsonb_build_object('outcome', 'existing', 'registration', v_new_rows[v_dup_of[i]]);
      v_code := 200;
    ELSIF v_results[i] ->> 'outcome' = 'existing' THEN
      v_code := 200;
    ELSE
      CONTINUE;
    END IF;
    IF p_key_hashes[i] IS NOT NULL THEN
      UPDATE idempotency_keys
      SET status_code = v_code, registration = v_results[i] -> 'registration',
          sealed_token = CASE WHEN v_code = 201 THEN p_sealed_tokens[i] END
      WHERE key_hash = p_key_hashes[i];
    END IF;
  END LOOP;

  -- Each course row written once, with the counters the batch arrived at.
  UPDATE courses c SET enrolled = u.enrolled, waitlisted = u.waitlisted, updated_at = now()
  FROM unnest(v_ids, v_enrolled, v_waitlisted, v_changed) AS u (id, enrolled, waitlisted, changed)
  WHERE c.id = u.id AND u.changed;
  RETURN v_results;
END
$$;

-- registrar_record_event (0002) for many new registrations at once: their events, their manage
-- tokens (the creation tokens, hashed), one email job for all (a graphile-worker batch job) and,
-- if webhooks subscribe, their deliveries in one more batch job. In the caller's transaction.
CREATE FUNCTION registrar_record_events(p_registration_ids uuid[], p_course_ids text[], p_kinds text[], p_positions integer[], p_tokens text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_emails json;
  v_webhooks json;
BEGIN
  WITH events AS (
    INSERT INTO registration_events (registration_id, course_id, kind, waitlist_position)
    SELECT n.id, n.course_id, n.kind, n.position
    FROM unnest(p_registration_ids, p_course_ids, p_kinds, p_positions) WITH ORDINALITY AS n (id, course_id, kind, position, o)
    ORDER BY n.o
    RETURNING id, registration_id, kind
  ), tokens AS (
    INSERT INTO manage_tokens (token_hash, registration_id)
    SELECT sha256(convert_to(t.token, 'UTF8')), t.id FROM unnest(p_registration_ids, p_tokens) AS t (id, token)
  )
  SELECT json_agg(json_build_object('eventId', e.id, 'manageToken', t.token) ORDER BY e.id)
  INTO v_emails
  FROM events e JOIN unnest(p_registration_ids, p_tokens) AS t (id, token) ON t.id = e.registration_id;
  PERFORM graphile_worker.add_job('send_email', v_emails, max_attempts => 25);

  IF EXISTS (SELECT 1 FROM webhooks) THEN
    WITH deliveries AS (
      INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
      SELECT w.id, e.id, registrar_webhook_event_type(e.kind)
      FROM registration_events e JOIN webhooks w ON registrar_webhook_event_type(e.kind) = ANY (w.events)
      WHERE e.registration_id = ANY (p_registration_ids)
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

-- One registration is a batch of one: a single set of rules.
CREATE OR REPLACE FUNCTION registrar_register(
  p_course_id text, p_name text, p_email text, p_email_key text, p_manage_token text,
  p_key_hash bytea, p_request_hash bytea, p_sealed_token bytea
) RETURNS jsonb LANGUAGE sql AS $$
  SELECT (registrar_register_batch(ARRAY[p_course_id], ARRAY[p_name], ARRAY[p_email], ARRAY[p_email_key],
    ARRAY[p_manage_token], ARRAY[p_key_hash], ARRAY[p_request_hash], ARRAY[p_sealed_token]))[1]
$$;

-- Imports write each chunk as one batch too.
CREATE OR REPLACE FUNCTION registrar_import_batch(
  p_import_id uuid, p_lines integer[], p_courses text[], p_names text[], p_emails text[],
  p_email_keys text[], p_tokens text[], p_errors jsonb, p_rows integer, p_through_line integer
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_import imports;
  v_results jsonb[];
  v_result jsonb;
  v_created integer := 0;
  v_existing integer := 0;
  v_waitlisted integer := 0;
  v_rejected integer := jsonb_array_length(p_errors);
  v_errors jsonb := p_errors;
  v_message text;
  v_none bytea[] := array_fill(NULL::bytea, ARRAY[coalesce(array_length(p_lines, 1), 0)]);
BEGIN
  SELECT * INTO STRICT v_import FROM imports WHERE id = p_import_id FOR UPDATE;
  IF v_import.done_through_line >= p_through_line THEN
    RETURN jsonb_build_object('skipped', true); -- this batch committed before a restart
  END IF;
  v_results := registrar_register_batch(p_courses, p_names, p_emails, p_email_keys, p_tokens, v_none, v_none, v_none);
  FOR i IN 1 .. coalesce(array_length(p_lines, 1), 0) LOOP
    v_result := v_results[i];
    CASE v_result ->> 'outcome'
      WHEN 'created' THEN
        v_created := v_created + 1;
        IF v_result -> 'registration' ->> 'status' = 'waitlisted' THEN v_waitlisted := v_waitlisted + 1; END IF;
      WHEN 'existing' THEN
        v_existing := v_existing + 1;
      ELSE
        v_rejected := v_rejected + 1;
        v_message := CASE v_result ->> 'outcome'
          WHEN 'course-full' THEN format('course "%s" is full (seats and waitlist taken)', p_courses[i])
          WHEN 'registration-closed' THEN format('registration for "%s" is not open', p_courses[i])
          WHEN 'course-not-found' THEN format('there is no course "%s"', p_courses[i])
          ELSE v_result ->> 'outcome' END;
        v_errors := v_errors || jsonb_build_array(jsonb_build_object('line', p_lines[i], 'message', v_message));
      END CASE;
  END LOOP;
  UPDATE imports SET
    rows = rows + p_rows,
    processed = processed + p_rows,
    created = created + v_created,
    existing = existing + v_existing,
    waitlisted = waitlisted + v_waitlisted,
    rejected = rejected + v_rejected,
    errors = CASE WHEN jsonb_array_length(errors) >= 100 THEN errors
      ELSE (SELECT coalesce(jsonb_agg(e ORDER BY (e ->> 'line')::int), '[]')
            FROM (SELECT e FROM jsonb_array_elements(errors || v_errors) e ORDER BY (e ->> 'line')::int LIMIT 100) first) END,
    done_through_line = p_through_line,
    updated_at = now()
  WHERE id = p_import_id;
  RETURN jsonb_build_object('created', v_created, 'existing', v_existing, 'waitlisted', v_waitlisted, 'rejected', v_rejected);
END
$$;

-- The jobs of a batch: one graphile-worker "batch job" per kind (its payload is the list of the
-- batch's entries, in the order they were queued) instead of one job per event. graphile-worker
-- retries a batch job with only the entries that failed (src/jobs/job-entries.ts).
CREATE OR REPLACE FUNCTION registrar_end_job_batch() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('registrar.batch_jobs', 'off', true);
  PERFORM graphile_worker.add_jobs(ARRAY(
    SELECT ROW(identifier, json_agg(payload ORDER BY ordinality), NULL, NULL, max(max_attempts), NULL, NULL, NULL)::graphile_worker.job_spec
    FROM (SELECT *, row_number() OVER () AS ordinality FROM registrar_batched_jobs) queued
    GROUP BY identifier));
  DELETE FROM registrar_batched_jobs;
END
$$;

-- Plans inside the batch functions. The connections run with plan_cache_mode=force_custom_plan
-- (src/db/database.ts: no generic plan made on empty tables survives their growth), but inside
-- plpgsql that also re-plans every expression of the per-member loop (measured: twice the
-- database CPU per registration). So here plans are cached as usual, and they cannot fall into
-- sequential scans of the tables that grow: every statement of these functions is a keyed
-- lookup or insert, for which an index always exists.
ALTER FUNCTION registrar_register_batch(text[], text[], text[], text[], text[], bytea[], bytea[], bytea[])
  SET plan_cache_mode = auto SET enable_seqscan = off;
ALTER FUNCTION registrar_record_events(uuid[], text[], text[], integer[], text[])
  SET plan_cache_mode = auto SET enable_seqscan = off;
