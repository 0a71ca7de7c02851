-- Joining a course's waiting room (one place per (course, email key)) and verifying a place's
-- email. docs/design.md, "The waiting room".
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- Why a course takes no join now, or NULL when it does: no such course (the row NULL, as
-- SELECT INTO leaves it when none is found), no queue, before its queue's joinFrom, or past
-- closesAt. The one check of the lone join and the batch's.
CREATE OR REPLACE FUNCTION registrar_queue_join_refusal(p_course courses) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN p_course.id IS NULL THEN 'course-not-found'
    WHEN p_course.queue_order IS NULL THEN 'no-queue'
    WHEN p_course.queue_join_from IS NOT NULL AND now() < p_course.queue_join_from THEN 'queue-not-open'
    WHEN p_course.closes_at IS NOT NULL AND now() >= p_course.closes_at THEN 'registration-closed'
  END
$$;

-- A join enters the order under registrar_queue_enter's lock (queue-places.sql): before opensAt
-- side by side with the other joins, from opensAt on ranked next under the queue state's row
-- lock. A course with verifyEmail takes the place as unverified, with no rank and no lock: it
-- enters the order once its email is verified (registrar_queue_verify). p_token_hash and
-- p_admission_hash: the join answer's token; the joined email gets a token of its own
-- (registrar_queue_email, queue-emails.sql), in this transaction. The same email again stores
-- nothing and emails the link again, at most once per 10 minutes: link_sent_at is set by a
-- conditional UPDATE, so concurrent second joins queue on the place's row lock and, under READ
-- COMMITTED, the later ones re-check the condition against the committed row and email nothing.
-- The email is the caller's to write (registrar_queue_join_batch writes a batch's at once): the
-- answer names it in `email` ('joined' or 'link'), `email_place` and `verifies`.
CREATE OR REPLACE FUNCTION registrar_queue_join_member(
  p_course text, p_name text, p_email text, p_email_key text, p_token_hash bytea, p_admission_hash bytea
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_state queue_states;
  v_place queue_places;
  v_rank bigint;
  v_refusal text;
BEGIN
  SELECT * INTO v_course FROM courses WHERE id = p_course;
  v_refusal := registrar_queue_join_refusal(v_course);
  IF v_refusal IS NOT NULL THEN RETURN jsonb_build_object('outcome', v_refusal); END IF;

  IF v_course.queue_verify_email THEN
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = p_course;
  ELSE
    v_state := registrar_queue_enter(v_course);
    IF v_state.ordered_at IS NOT NULL THEN v_rank := v_state.ranked + 1; END IF;
  END IF;
  IF v_state.sold_out_at IS NOT NULL THEN RETURN jsonb_build_object('outcome', 'course-full'); END IF;

  INSERT INTO queue_places (course_id, name, email, email_key, status, rank)
  VALUES (p_course, p_name, p_email, p_email_key,
    CASE WHEN v_course.queue_verify_email THEN 'unverified' ELSE 'waiting' END::queue_place_status, v_rank)
  ON CONFLICT (course_id, email_key) DO NOTHING
  RETURNING * INTO v_place;
  IF NOT FOUND THEN
    UPDATE queue_places SET link_sent_at = now()
    WHERE course_id = p_course AND email_key = p_email_key
      AND (link_sent_at IS NULL OR link_sent_at <= now() - interval '10 minutes')
    RETURNING * INTO v_place;
    IF FOUND THEN
      RETURN jsonb_build_object('outcome', 'existing', 'email', 'link', 'email_place', v_place.id, 'verifies', v_place.status = 'unverified');
    END IF;
    RETURN jsonb_build_object('outcome', 'existing');
  END IF;
  IF v_rank IS NOT NULL THEN
    UPDATE queue_states SET ranked = v_rank WHERE course_id = p_course RETURNING * INTO v_state;
  END IF;
  INSERT INTO queue_tokens (token_hash, place_id, admission_hash, emailed) VALUES (p_token_hash, v_place.id, p_admission_hash, false);
  RETURN jsonb_build_object('outcome', 'created', 'place', registrar_queue_place_row(v_place, v_state),
    'email', 'joined', 'email_place', v_place.id, 'verifies', v_place.status = 'unverified');
END
$$;

-- Joins of several students (of one course or several) in one transaction: the group commit of
-- src/db/queries/queue.queries.ts, so a rush of joins costs one commit, one WAL flush and one
-- job insert (one NOTIFY, which serializes commits) per batch, not per join. Courses are taken
-- in id order, so two batches take their locks in the same order. A course whose places get no
-- rank now (before opensAt, or with verifyEmail) takes its members in one INSERT of places and
-- one of tokens, under registrar_queue_enter's lock as a lone join (the first of an email in the
-- batch is created, the others, and emails with a place already, go on as lone joins: 'existing').
-- Any other course's members (ranked next under the state row's lock, or refused) each run as
-- registrar_queue_join_member. The batch's emails are written after the last member, one
-- registrar_queue_email per kind. The token hashes come as hex text (postgres.js sends an array
-- of Buffers as one bytea). Answers a JSON array, one outcome per member, in the members' order.
CREATE OR REPLACE FUNCTION registrar_queue_join_batch(
  p_courses text[], p_names text[], p_emails text[], p_email_keys text[], p_token_hashes text[], p_admission_hashes text[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_results jsonb[] := array_fill(NULL::jsonb, ARRAY[cardinality(p_courses)]);
  v_course_id text;
  v_course courses;
  v_state queue_states;
  v_members bigint[];
  v_row record;
  v_i bigint;
  v_kind text;
  v_verifies boolean;
BEGIN
  FOR v_course_id IN SELECT DISTINCT c FROM unnest(p_courses) AS c ORDER BY c LOOP
    SELECT * INTO v_course FROM courses WHERE id = v_course_id;
    IF registrar_queue_join_refusal(v_course) IS NULL
       AND (v_course.queue_verify_email OR (v_course.opens_at IS NOT NULL AND now() < v_course.opens_at)) THEN
      IF v_course.queue_verify_email THEN
        SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = v_course_id;
      ELSE
        v_state := registrar_queue_enter(v_course);
      END IF;
      -- The course's members by their ordinals, joined to the arrays rather than filtered by
      -- course: a filter on a column of unnest has no statistics, so the planner would expect
      -- one member of the many and join the CTEs below in nested loops, comparing every member
      -- with every other (quadratic in the batch); the ordinals' array gives it their number.
      v_members := ARRAY(SELECT m.o FROM unnest(p_courses) WITH ORDINALITY AS m (course, o) WHERE m.course = v_course_id ORDER BY m.o);
      FOR v_row IN
        WITH members AS (
          SELECT m.o, m.name, m.email, m.email_key, m.token_hash, m.admission_hash
          FROM unnest(v_members) AS c (o)
          JOIN unnest(p_courses, p_names, p_emails, p_email_keys, p_token_hashes, p_admission_hashes)
            WITH ORDINALITY AS m (course, name, email, email_key, token_hash, admission_hash, o) ON m.o = c.o
        ), firsts AS (
          SELECT DISTINCT ON (f.email_key) f.* FROM members f ORDER BY f.email_key, f.o
        ), inserted AS (
          INSERT INTO queue_places (course_id, name, email, email_key, status)
          SELECT v_course_id, f.name, f.email, f.email_key,
            CASE WHEN v_course.queue_verify_email THEN 'unverified' ELSE 'waiting' END::queue_place_status
          FROM firsts f WHERE v_state.sold_out_at IS NULL ORDER BY f.o
          ON CONFLICT (course_id, email_key) DO NOTHING
          RETURNING *
        ), tokens AS (
          INSERT INTO queue_tokens (token_hash, place_id, admission_hash, emailed)
          SELECT decode(f.token_hash, 'hex'), i.id, decode(f.admission_hash, 'hex'), false
          FROM inserted i JOIN firsts f ON f.email_key = i.email_key
        )
        SELECT m.o, m.name, m.email, m.email_key, m.token_hash, m.admission_hash, i.id,
          registrar_queue_place_row(ROW(i.*)::queue_places, v_state) AS place
        FROM members m LEFT JOIN firsts f ON f.o = m.o LEFT JOIN inserted i ON i.email_key = f.email_key
      LOOP
        IF v_state.sold_out_at IS NOT NULL THEN
          v_results[v_row.o] := jsonb_build_object('outcome', 'course-full');
        ELSIF v_row.id IS NOT NULL THEN
          v_results[v_row.o] := jsonb_build_object('outcome', 'created', 'place', v_row.place,
            'email', 'joined', 'email_place', v_row.id, 'verifies', v_course.queue_verify_email);
        ELSE
          v_results[v_row.o] := registrar_queue_join_member(v_course_id, v_row.name, v_row.email, v_row.email_key,
            decode(v_row.token_hash, 'hex'), decode(v_row.admission_hash, 'hex'));
        END IF;
      END LOOP;
    ELSE
      FOR v_i IN SELECT m.o FROM unnest(p_courses) WITH ORDINALITY AS m (course, o) WHERE m.course = v_course_id ORDER BY m.o LOOP
        v_results[v_i] := registrar_queue_join_member(p_courses[v_i], p_names[v_i], p_emails[v_i], p_email_keys[v_i],
          decode(p_token_hashes[v_i], 'hex'), decode(p_admission_hashes[v_i], 'hex'));
      END LOOP;
    END IF;
  END LOOP;
  FOR v_kind, v_verifies IN SELECT DISTINCT r ->> 'email', (r ->> 'verifies')::boolean FROM unnest(v_results) AS r WHERE r ? 'email' LOOP
    PERFORM registrar_queue_email(ARRAY(
      SELECT (x.r ->> 'email_place')::uuid FROM unnest(v_results) WITH ORDINALITY AS x (r, o)
      WHERE x.r ->> 'email' = v_kind AND (x.r ->> 'verifies')::boolean = v_verifies ORDER BY x.o), v_kind, v_verifies);
  END LOOP;
  RETURN (SELECT jsonb_agg(x.r - 'email' - 'email_place' - 'verifies' ORDER BY x.o) FROM unnest(v_results) WITH ORDINALITY AS x (r, o));
END
$$;

-- One join, alone in its transaction: a batch of one.
CREATE OR REPLACE FUNCTION registrar_queue_join(
  p_course text, p_name text, p_email text, p_email_key text, p_token_hash bytea, p_admission_hash bytea
) RETURNS jsonb LANGUAGE sql AS $$
  SELECT registrar_queue_join_batch(ARRAY[p_course], ARRAY[p_name], ARRAY[p_email], ARRAY[p_email_key],
    ARRAY[encode(p_token_hash, 'hex')], ARRAY[encode(p_admission_hash, 'hex')]) -> 0
$$;

-- Verifies a place's email (POST /queue/{id}/verify, with a token made for one of its emails,
-- checked by the caller): an unverified place enters the order under registrar_queue_enter's
-- lock, as a join does: waiting without a rank before the places are ordered (the ordering
-- ranks it), else ranked next; sold-out if the course sold out meanwhile. Any other place is
-- answered as it is ('unchanged'), also when a concurrent verification or leave came first.
CREATE OR REPLACE FUNCTION registrar_queue_verify(p_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_state queue_states;
  v_place queue_places;
  v_rank bigint;
BEGIN
  SELECT * INTO v_place FROM queue_places WHERE id = p_id;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'not-found'); END IF;
  IF v_place.status <> 'unverified' THEN
    RETURN jsonb_build_object('outcome', 'unchanged', 'place', registrar_queue_place(p_id));
  END IF;
  SELECT * INTO STRICT v_course FROM courses WHERE id = v_place.course_id;
  v_state := registrar_queue_enter(v_course);
  IF v_state.ordered_at IS NOT NULL AND v_state.sold_out_at IS NULL THEN v_rank := v_state.ranked + 1; END IF;
  UPDATE queue_places SET rank = v_rank, updated_at = now(),
    status = CASE WHEN v_state.sold_out_at IS NOT NULL THEN 'sold-out' ELSE 'waiting' END::queue_place_status
  WHERE id = p_id AND status = 'unverified'
  RETURNING * INTO v_place;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'unchanged', 'place', registrar_queue_place(p_id));
  END IF;
  IF v_rank IS NOT NULL THEN
    UPDATE queue_states SET ranked = v_rank WHERE course_id = v_place.course_id RETURNING * INTO v_state;
  END IF;
  RETURN jsonb_build_object('outcome', 'verified', 'place', registrar_queue_place_row(v_place, v_state));
END
$$;
