-- Joining a course's waiting room: one place per (course, email key). docs/design.md, "The waiting room".
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- Before opensAt a join holds the course's join lock shared (registrar_queue_join_lock_key,
-- queue-places.sql): joins go side by side, and the ordering, which takes it exclusively, waits
-- for each one in flight, so no place that joined before it is left unranked. From opensAt on a
-- join takes the queue state's row lock (FOR UPDATE), orders the places if nobody has yet, and
-- ranks itself next (ranked + 1), so ranks have no gaps. A join that started before opensAt but
-- finds the places ordered once it holds the shared lock raises 40001: run again
-- (src/db/retry-policy.ts), it starts after opensAt and takes the exclusive path.
CREATE OR REPLACE FUNCTION registrar_queue_join(
  p_course text, p_name text, p_email text, p_email_key text, p_token_hash bytea, p_admission_hash bytea
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_state queue_states;
  v_place queue_places;
  v_rank bigint;
BEGIN
  SELECT * INTO v_course FROM courses WHERE id = p_course;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'course-not-found'); END IF;
  IF v_course.queue_order IS NULL THEN RETURN jsonb_build_object('outcome', 'no-queue'); END IF;
  IF v_course.queue_join_from IS NOT NULL AND now() < v_course.queue_join_from THEN
    RETURN jsonb_build_object('outcome', 'queue-not-open');
  END IF;
  IF v_course.closes_at IS NOT NULL AND now() >= v_course.closes_at THEN
    RETURN jsonb_build_object('outcome', 'registration-closed');
  END IF;

  IF v_course.opens_at IS NOT NULL AND now() < v_course.opens_at THEN
    PERFORM pg_advisory_xact_lock_shared(7211304, registrar_queue_join_lock_key(p_course));
    -- Read after the lock: an ordering that committed meanwhile is seen.
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = p_course;
    IF v_state.ordered_at IS NOT NULL THEN
      RAISE EXCEPTION 'the places of % were ordered while this join waited', p_course USING ERRCODE = 'serialization_failure';
    END IF;
  ELSE
    PERFORM registrar_queue_order(p_course);
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = p_course FOR UPDATE;
    IF v_state.sold_out_at IS NOT NULL THEN RETURN jsonb_build_object('outcome', 'course-full'); END IF;
    v_rank := v_state.ranked + 1;
  END IF;

  INSERT INTO queue_places (course_id, name, email, email_key, rank, token_hash, admission_hash)
  VALUES (p_course, p_name, p_email, p_email_key, v_rank, p_token_hash, p_admission_hash)
  ON CONFLICT (course_id, email_key) DO NOTHING
  RETURNING * INTO v_place;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'existing'); END IF;
  IF v_rank IS NOT NULL THEN
    UPDATE queue_states SET ranked = v_rank WHERE course_id = p_course RETURNING * INTO v_state;
  END IF;
  RETURN jsonb_build_object('outcome', 'created', 'place', registrar_queue_place_row(v_place, v_state));
END
$$;
