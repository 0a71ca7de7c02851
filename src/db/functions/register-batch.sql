-- Registration: a batch of registrations, in their order of arrival, decided in one transaction
-- (docs/design.md, "The hot course"). Members are decided one after another with the counters in
-- memory, so a later member sees what an earlier one did (the same student twice in one batch:
-- the second finds the first's registration), and each course row is written once. A member is
-- refused when its course's window is closed (registrar_course_is_open, course-window.sql); else
-- it takes a seat while enrolled < capacity - offered (seats held by waitlist offers, offers.sql
-- are not free), else a waitlist place while waitlisted <
-- waitlist_capacity, else it is refused as full. For a course with a queue, a member that would
-- get a seat or a waitlist place needs its admission (p_admission_hashes: the SHA-256 of the
-- token, NULL without one): the admitted place of this course and student, within its time,
-- locked until the commit (registrar_lock_admission, queue-places.sql) and consumed with the
-- registration (status registered); without it the member is refused as not-admitted.
-- For a course of a term with a limit, a member that would get a seat or a waitlist place is
-- refused as limit-reached when the student holds the limit's active registrations in the
-- term's courses (term_students, counted in memory as the batch goes; docs/design.md, "Terms").
--
-- One call is one attempt, in the mode the caller asks for. Lock last (p_lock_first false): the
-- batch is decided on the courses as read, written, and only then are its courses locked (FOR NO
-- KEY UPDATE, in id order, so two batches cannot deadlock on them) to check the decisions: a
-- course whose row version (xmin: every change to a course writes its row) is unchanged keeps
-- every decision; a newer one keeps them only if they were all seats that still fit. Otherwise
-- the attempt raises RGB01 and its transaction rolls back. The term counts of the batch's
-- students are written after the course locks, each row locked by its upsert in (term, email
-- key) order: a count over its term's limit, or a refusal whose count fell meanwhile, raises
-- RGB01 too. Locked first, the counts are locked (the same upsert) right after the courses,
-- before they are read. It can also fail on the unique index
-- (23505: the same student registered meanwhile) or in a deadlock (40P01: its new rows'
-- unique-index entries waited for a course held by a locked-first batch inserting the same
-- student). Lock first (p_lock_first true): the courses are locked before they are read, so
-- nothing changes under the decisions. Locked first, a batch whose courses hold offered seats
-- settles their due offers before it counts (registrar_lock_counts_and_settle, offers.sql; unless
-- p_settled: its caller did), and it reads the terms' limits under FOR KEY SHARE on each term row,
-- the lock a change of the limit (FOR UPDATE) waits for; lock last, an offer past its deadline in
-- a locked course, or a limit changed since it was read (checked under that share lock), raises
-- RGB01. What the caller does after a failed attempt is one table:
-- src/db/retry-policy.ts. Batches with Idempotency-Keys are decided locked first: a key's
-- advisory lock and its stored answer belong to the one transaction that decides it.
--
-- FOR NO KEY UPDATE: the course row's key never changes, and the foreign-key checks of the
-- inserts (FOR KEY SHARE on the course) must not conflict with another batch's course lock.
-- Plans: the function keeps generic plans (plan_cache_mode = force_generic_plan, for the functions
-- it calls too; the connections force custom plans) and runs with enable_seqscan = off: every
-- statement in it is a keyed lookup or insert. Under auto the statements over the arrays kept
-- custom plans (their estimates from the arrays' real, small, sizes came out cheaper than the
-- generic plan's), so each call planned them again: about 0.8 ms of a call's 3 ms at 8 members
-- (docs/benchmarks.md, "The fixed cost of a batch").
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_register_batch(
  p_lock_first boolean,
  p_courses text[], p_names text[], p_emails text[], p_email_keys text[], p_tokens text[],
  p_key_hashes bytea[], p_request_hashes bytea[], p_sealed_tokens bytea[], p_admission_hashes bytea[],
  p_actor text DEFAULT 'student', p_settled boolean DEFAULT false
) RETURNS jsonb[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
  v_count integer := coalesce(array_length(p_courses, 1), 0);
  -- The courses of the batch, locked, in id order, with their counters as the batch changes them.
  v_ids text[];
  v_capacity integer[];
  v_waitlist_capacity integer[];
  v_enrolled integer[];
  v_waitlisted integer[];
  v_open boolean[];
  v_queued boolean[];
  v_changed boolean[];
  -- The counters as read at the start, and the courses where someone was refused (full, closed).
  v_read_enrolled integer[];
  v_read_waitlisted integer[];
  -- The course rows' versions as read (xmin: the transaction that last wrote each).
  v_read_version xid[];
  v_refused boolean[];
  -- Each course's term and the term's limit (NULL: none).
  v_term text[];
  v_limit integer[];
  -- Per (term, student) of the batch, in (term, email key) order: the active count as read, as
  -- the batch changes it, whether a member was refused for the limit, and the limit.
  v_ts_keys text[] := '{}';
  v_ts_terms text[] := '{}';
  v_ts_emails text[] := '{}';
  v_ts_read integer[] := '{}';
  v_ts_active integer[];
  v_ts_refused boolean[];
  v_ts_limit integer[] := '{}';
  v_ts record;
  v_t integer;
  -- Locked at the end (p_lock_first false): the courses as they are now, in id order, with their
  -- versions and whether their windows are open now.
  v_now_version xid[];
  v_now_offered integer[];
  v_now_open boolean[];
  v_now_term text[];
  v_now_enrolled integer[];
  v_now_waitlisted integer[];
  v_now_capacity integer[];
  v_now_queued boolean[];
  -- Students of the batch registered already: "course\nemail_key" and their rows.
  v_active_keys text[];
  v_active_rows jsonb[];
  -- The registrations this batch creates, in arrival order.
  v_new_members integer[] := '{}';
  v_new_ids uuid[] := '{}';
  v_new_keys text[] := '{}';
  v_new_status registration_status[] := '{}';
  v_new_positions integer[] := '{}';
  -- The queue place each new registration consumes (NULL for a course without a queue).
  v_new_places uuid[] := '{}';
  v_place uuid;
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
  v_held boolean;
  v_termed boolean;
  v_term_limits record;
BEGIN
  -- Idempotency keys first, before any course lock: if another request with a key of this batch
  -- is still being handled, that member answers 409 at once (draft-ietf-httpapi-idempotency-
  -- key-header) instead of waiting behind the course lock. The key's lock lives as long as the
  -- transaction.
  FOR i IN 1 .. v_count LOOP
    IF p_key_hashes[i] IS NOT NULL AND NOT p_lock_first THEN
      RAISE EXCEPTION 'a batch with Idempotency-Keys is decided locked first (p_lock_first true)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_key_free := v_key_free || (p_key_hashes[i] IS NULL
      OR pg_try_advisory_xact_lock(('x' || encode(substr(p_key_hashes[i], 1, 8), 'hex'))::bit(64)::bigint));
  END LOOP;

  IF p_lock_first THEN
    SELECT coalesce(bool_or(c.offered > 0), false), coalesce(bool_or(c.term_id IS NOT NULL), false) INTO v_held, v_termed
    FROM (SELECT offered, term_id FROM courses WHERE id = ANY (p_courses) ORDER BY id FOR NO KEY UPDATE) c;
    -- Offers whose deadline has come end before the seats are counted: an expired offer's seat
    -- is free for the next in line, or for this batch when nobody waits (docs/design.md,
    -- "Waitlist offers"). Unless the caller settled them under its locks (p_settled).
    IF v_held AND NOT p_settled THEN
      PERFORM registrar_lock_counts_and_settle(p_courses, p_courses, p_email_keys, clock_timestamp());
    END IF;
    -- The terms' limits are read under a share lock on each term row: a change of a limit
    -- (PATCH /terms, FOR UPDATE) waits for this batch, or this batch for it (docs/design.md, "Terms").
    IF v_termed THEN
      PERFORM 1 FROM terms WHERE id IN (SELECT term_id FROM courses WHERE id = ANY (p_courses)) ORDER BY id FOR KEY SHARE;
    END IF;
  END IF;
  SELECT coalesce(array_agg(id ORDER BY id), '{}'), array_agg(capacity - offered ORDER BY id),
         array_agg(waitlist_capacity ORDER BY id), array_agg(enrolled ORDER BY id),
         array_agg(waitlisted ORDER BY id),
         array_agg(registrar_course_is_open(opens_at, closes_at) ORDER BY id),
         array_agg(queue_order IS NOT NULL ORDER BY id),
         array_agg(false ORDER BY id), array_agg(false ORDER BY id), array_agg(xmin ORDER BY id),
         array_agg(term_id ORDER BY id),
         array_agg((SELECT t.max_courses_per_student FROM terms t WHERE t.id = term_id) ORDER BY id)
    INTO v_ids, v_capacity, v_waitlist_capacity, v_enrolled, v_waitlisted, v_open, v_queued, v_changed, v_refused, v_read_version, v_term, v_limit
    FROM courses WHERE id = ANY (p_courses);
  v_read_enrolled := v_enrolled;
  v_read_waitlisted := v_waitlisted;

  -- The term counts of the batch's students, for the courses that have a term (none: nothing
  -- read). Locked first, each row is locked (made, if new) by one upsert in (term, email key)
  -- order, after the course locks: the order every batch and cancel takes them in.
  IF cardinality(array_remove(v_term, NULL)) > 0 THEN
    IF p_lock_first THEN
      WITH locked AS (
        INSERT INTO term_students AS s (term_id, email_key, active)
        SELECT DISTINCT c.term_id, m.k, 0
        FROM unnest(p_courses, p_email_keys) AS m (course_id, k) JOIN unnest(v_ids, v_term) AS c (id, term_id) ON c.id = m.course_id
        WHERE c.term_id IS NOT NULL
        ORDER BY 1, 2
        ON CONFLICT (term_id, email_key) DO UPDATE SET active = s.active
        RETURNING s.term_id, s.email_key, s.active)
      SELECT array_agg(term_id || E'\n' || email_key ORDER BY term_id, email_key), array_agg(term_id ORDER BY term_id, email_key),
             array_agg(email_key ORDER BY term_id, email_key), array_agg(active ORDER BY term_id, email_key)
        INTO v_ts_keys, v_ts_terms, v_ts_emails, v_ts_read FROM locked;
    ELSE
      SELECT array_agg(p.t || E'\n' || p.k ORDER BY p.t, p.k), array_agg(p.t ORDER BY p.t, p.k),
             array_agg(p.k ORDER BY p.t, p.k), array_agg(coalesce(s.active, 0) ORDER BY p.t, p.k)
        INTO v_ts_keys, v_ts_terms, v_ts_emails, v_ts_read
        FROM (SELECT DISTINCT c.term_id AS t, m.k
              FROM unnest(p_courses, p_email_keys) AS m (course_id, k) JOIN unnest(v_ids, v_term) AS c (id, term_id) ON c.id = m.course_id
              WHERE c.term_id IS NOT NULL) p
        LEFT JOIN term_students s ON s.term_id = p.t AND s.email_key = p.k;
    END IF;
    v_ts_limit := ARRAY(SELECT v_limit[array_position(v_term, t)] FROM unnest(v_ts_terms) WITH ORDINALITY AS u (t, o) ORDER BY o);
  END IF;
  v_ts_keys := coalesce(v_ts_keys, '{}');
  v_ts_active := v_ts_read;
  v_ts_refused := array_fill(false, ARRAY[cardinality(v_ts_keys)]);

  -- Students of the batch registered already: one index probe per student
  -- (active-registration.sql). A registration of the same student committed meanwhile by another
  -- transaction makes the insert below fail on the unique index (23505), and the attempt with it.
  SELECT coalesce(array_agg(r.course_id || E'\n' || r.email_key), '{}'), array_agg(registrar_registration_row(r))
    INTO v_active_keys, v_active_rows
    FROM (SELECT DISTINCT c, k FROM unnest(p_courses, p_email_keys) AS s (c, k)) s
    CROSS JOIN LATERAL registrar_active_registration(s.c, s.k) r;

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
    ELSIF v_queued[v_c] AND v_open[v_c] AND NOT registrar_admission_is_students(p_admission_hashes[i], p_courses[i], p_email_keys[i]) THEN
      -- Before the registered-already answer: without this student's own admission (none, or
      -- a forged one) a queued course tells nothing, not even that this student holds a
      -- registration, and sends no reminder. A retry with it is answered as registered.
      v_results[i] := jsonb_build_object('outcome', 'not-admitted');
    ELSIF v_student = ANY (v_active_keys) THEN
      v_results[i] := jsonb_build_object('outcome', 'existing', 'registration', v_active_rows[array_position(v_active_keys, v_student)]);
    ELSIF v_student = ANY (v_new_keys) THEN
      v_dup_of[i] := array_position(v_new_keys, v_student);
    ELSIF NOT v_open[v_c] THEN
      v_results[i] := jsonb_build_object('outcome', 'registration-closed');
      v_refused[v_c] := true;
    ELSE
      v_status := NULL;
      v_position := NULL;
      v_place := NULL;
      IF v_queued[v_c] AND (v_enrolled[v_c] < v_capacity[v_c] OR v_waitlisted[v_c] < v_waitlist_capacity[v_c]) THEN
        v_place := registrar_lock_admission(p_admission_hashes[i], p_courses[i], p_email_keys[i]);
        IF v_place IS NULL THEN
          v_results[i] := jsonb_build_object('outcome', 'not-admitted');
        END IF;
      END IF;
      -- The term's limit: only a member that would take a place is refused for it (a full course
      -- answers full, as it does from memory).
      v_t := CASE WHEN v_term[v_c] IS NOT NULL THEN array_position(v_ts_keys, v_term[v_c] || E'\n' || p_email_keys[i]) END;
      IF v_results[i] IS NULL AND v_t IS NOT NULL AND v_ts_limit[v_t] IS NOT NULL AND v_ts_active[v_t] >= v_ts_limit[v_t]
        AND (v_enrolled[v_c] < v_capacity[v_c] OR v_waitlisted[v_c] < v_waitlist_capacity[v_c]) THEN
        v_results[i] := jsonb_build_object('outcome', 'limit-reached', 'term', v_term[v_c], 'limit', v_ts_limit[v_t]);
        v_ts_refused[v_t] := true;
      END IF;
      IF v_results[i] IS NULL AND v_enrolled[v_c] < v_capacity[v_c] THEN
        v_status := 'enrolled';
        v_enrolled[v_c] := v_enrolled[v_c] + 1;
      ELSIF v_results[i] IS NULL AND v_waitlisted[v_c] < v_waitlist_capacity[v_c] THEN
        v_status := 'waitlisted';
        v_waitlisted[v_c] := v_waitlisted[v_c] + 1;
        v_position := v_waitlisted[v_c];
      END IF;
      IF v_results[i] IS NOT NULL THEN
        NULL;
      ELSIF v_status IS NULL THEN
        -- queued: the worker then remembers both (src/domain/full-courses.ts), so that its
        -- answers from memory never tell a request without an admission who is registered.
        v_results[i] := jsonb_build_object('outcome', 'course-full', 'queued', v_queued[v_c]);
        v_refused[v_c] := true;
      ELSE
        v_changed[v_c] := true;
        IF v_t IS NOT NULL THEN
          v_ts_active[v_t] := v_ts_active[v_t] + 1;
        END IF;
        v_new_members := v_new_members || i;
        v_new_ids := v_new_ids || gen_random_uuid();
        v_new_keys := v_new_keys || v_student;
        v_new_status := v_new_status || v_status;
        v_new_positions := v_new_positions || v_position;
        v_new_places := v_new_places || v_place;
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
      v_new_positions, (SELECT array_agg(p_tokens[m] ORDER BY o) FROM unnest(v_new_members) WITH ORDINALITY AS n (m, o)),
      p_actor, (SELECT array_agg(CASE s WHEN 'enrolled' THEN 'enrolled: a seat was free' ELSE format('waitlisted: the seats were taken; position %s', p) END ORDER BY o)
        FROM unnest(v_new_status, v_new_positions) WITH ORDINALITY AS n (s, p, o)));

    IF cardinality(array_remove(v_new_places, NULL)) > 0 THEN
      UPDATE queue_places q SET status = 'registered', registration_id = n.id, registered_at = now(), updated_at = now()
      FROM unnest(v_new_places, v_new_ids) AS n (place, id)
      WHERE q.id = n.place;
    END IF;
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

  IF NOT p_lock_first THEN
    -- Now the course locks, in id order, only to check the decisions and write the counters. A
    -- course whose row is the version read (nothing committed to it since): every decision
    -- stands, exactly as if it had been locked from the start (the opening window is checked
    -- again: time moved). A course changed meanwhile (another batch, a cancel, an admin change):
    -- its decisions stand only if they were all "enrolled" and still fit (no refusal, no
    -- waitlist place, nobody waiting, the seats still there, the waiting room neither added nor
    -- removed), since enrolling has no order to keep. Otherwise the attempt fails with RGB01 (the caller decides it again, locked first).
    -- One statement locks them all (a lock per row as the sorted rows pass, so in id order) and
    -- reads each as it is now; courses are never deleted, so each of v_ids comes back once.
    SELECT array_agg(l.version ORDER BY l.id), array_agg(l.offered ORDER BY l.id), array_agg(l.open_now ORDER BY l.id),
           array_agg(l.term_id ORDER BY l.id), array_agg(l.enrolled ORDER BY l.id), array_agg(l.waitlisted ORDER BY l.id),
           array_agg(l.capacity ORDER BY l.id), array_agg(l.queued ORDER BY l.id)
      INTO v_now_version, v_now_offered, v_now_open, v_now_term, v_now_enrolled, v_now_waitlisted, v_now_capacity, v_now_queued
      FROM (SELECT c.id, c.xmin AS version, c.offered, registrar_course_is_open(c.opens_at, c.closes_at) AS open_now, c.term_id,
                   c.enrolled, c.waitlisted, c.capacity, c.queue_order IS NOT NULL AS queued
            FROM courses c WHERE c.id = ANY (v_ids) ORDER BY c.id FOR NO KEY UPDATE) l;
    FOR c IN 1 .. cardinality(v_ids) LOOP
      -- An offer whose deadline has come holds a seat it no longer may: settled locked first,
      -- the seat may be this batch's (a row version says nothing about the clock).
      IF v_now_offered[c] > 0 AND EXISTS (SELECT 1 FROM registrations WHERE course_id = v_ids[c] AND offer_until <= clock_timestamp()) THEN
        RAISE EXCEPTION 'course % holds an offer past its deadline', v_ids[c] USING ERRCODE = 'RGB01';
      END IF;
      CONTINUE WHEN v_now_version[c] = v_read_version[c] AND v_now_open[c] = v_open[c];
      IF v_now_term[c] IS DISTINCT FROM v_term[c] THEN
        RAISE EXCEPTION 'course % changed its term while its batch was decided', v_ids[c] USING ERRCODE = 'RGB01';
      END IF;
      CONTINUE WHEN NOT v_refused[c] AND v_waitlisted[c] = v_read_waitlisted[c] AND v_now_waitlisted[c] = 0
        AND v_now_enrolled[c] + (v_enrolled[c] - v_read_enrolled[c]) <= v_now_capacity[c] - v_now_offered[c] AND v_now_open[c]
        AND v_now_queued[c] = v_queued[c];
      RAISE EXCEPTION 'course % changed while its batch was decided', v_ids[c] USING ERRCODE = 'RGB01';
    END LOOP;
  END IF;

  -- The term counts, after the course locks, each row locked by the upsert in (term, email key)
  -- order: what the batch added, and (lock last) the rows of its limit refusals, to check them.
  -- Under READ COMMITTED the upsert adds to the count as committed now: lock last, a count over
  -- the limit (another course of the term registered the student meanwhile) or a refusal whose
  -- count fell (a cancel meanwhile: the place it refused may be free) fails the attempt with
  -- RGB01; it is decided again locked first. A count that rose keeps a refusal right.
  IF cardinality(v_ts_keys) > 0 THEN
    IF NOT p_lock_first THEN
      -- The limits as read, checked under a share lock on each term row (the lock a change of
      -- the limit waits for): a limit changed meanwhile fails the attempt with RGB01.
      FOR v_term_limits IN
        SELECT t.id, t.max_courses_per_student FROM terms t WHERE t.id = ANY (v_ts_terms) ORDER BY t.id FOR KEY SHARE
      LOOP
        IF v_term_limits.max_courses_per_student IS DISTINCT FROM v_ts_limit[array_position(v_ts_terms, v_term_limits.id)] THEN
          RAISE EXCEPTION 'the limit of term % changed while its batch was decided', v_term_limits.id USING ERRCODE = 'RGB01';
        END IF;
      END LOOP;
    END IF;
    FOR v_ts IN
      INSERT INTO term_students AS s (term_id, email_key, active)
      SELECT u.t, u.k, u.active - u.read
      FROM unnest(v_ts_terms, v_ts_emails, v_ts_active, v_ts_read, v_ts_refused) WITH ORDINALITY AS u (t, k, active, read, refused, o)
      WHERE u.active > u.read OR (u.refused AND NOT p_lock_first)
      ORDER BY u.o
      ON CONFLICT (term_id, email_key) DO UPDATE SET active = s.active + excluded.active
      RETURNING s.term_id, s.email_key, s.active
    LOOP
      v_t := array_position(v_ts_keys, v_ts.term_id || E'\n' || v_ts.email_key);
      IF (v_ts_active[v_t] > v_ts_read[v_t] AND v_ts.active > v_ts_limit[v_t])
        OR (v_ts_refused[v_t] AND v_ts.active - (v_ts_active[v_t] - v_ts_read[v_t]) < v_ts_read[v_t]) THEN
        RAISE EXCEPTION 'the count of a student in term % changed while its batch was decided', v_ts.term_id USING ERRCODE = 'RGB01';
      END IF;
    END LOOP;
  END IF;

  -- Each course row written once, with what the batch added.
  UPDATE courses c SET enrolled = c.enrolled + u.enrolled - u.read_enrolled, waitlisted = c.waitlisted + u.waitlisted - u.read_waitlisted, updated_at = now()
  FROM unnest(v_ids, v_enrolled, v_waitlisted, v_read_enrolled, v_read_waitlisted, v_changed) AS u (id, enrolled, waitlisted, read_enrolled, read_waitlisted, changed)
  WHERE c.id = u.id AND u.changed;
  RETURN v_results;
END
$$;
