-- A swap (SPEC "Terms: rules across courses"; docs/design.md, "Swaps"): the student of an active
-- registration is enrolled in another course and the old registration is cancelled, in one
-- transaction, or nothing changes (invariant 9). Both courses are locked in id order, then the
-- student's term counts in (term, email key) order: the order every registration batch and cancel
-- takes them in, so a swap cannot deadlock against them. Under those locks, in a subtransaction,
-- the old registration is cancelled (registrar_cancel: its seat goes to its course's waitlist or
-- an offer, its term place is freed) and the new one is decided as a locked-first member of
-- registrar_register_batch (window, queue, registered already, term limit, seat): unless it was
-- created enrolled, the subtransaction rolls back whole. So a swap within a term leaves the
-- term's count as it was (one out, one in), and a swap into another term's course counts there.
-- Both history entries say "swapped from X to Y"; their emails and webhooks are the cancel's and
-- the enrolment's. p_actor: student (a manage token) or admin.
-- Returns {outcome: swapped, registration, cancelled} or {outcome: <refusal>, ...}.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_swap(p_registration_id uuid, p_course_id text, p_token text, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_old registrations;
  v_cancel jsonb;
  v_result jsonb;
  v_new_id uuid;
  v_reason text;
BEGIN
  SELECT * INTO v_old FROM registrations WHERE id = p_registration_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not-found');
  END IF;
  IF v_old.course_id = p_course_id THEN
    RETURN jsonb_build_object('outcome', 'same-course');
  END IF;
  PERFORM 1 FROM courses WHERE id IN (v_old.course_id, p_course_id) ORDER BY id FOR NO KEY UPDATE;
  IF NOT EXISTS (SELECT 1 FROM courses WHERE id = p_course_id) THEN
    RETURN jsonb_build_object('outcome', 'course-not-found');
  END IF;
  -- The student's counts in both courses' terms and those of the offers due in them, locked in
  -- key order; then offers whose deadline has come end (offers.sql): the old registration's may
  -- be among them. The cancel and the registration below find them settled.
  PERFORM registrar_lock_counts_and_settle(ARRAY[v_old.course_id, p_course_id], ARRAY[v_old.course_id, p_course_id],
    ARRAY[v_old.email_key, v_old.email_key], clock_timestamp());
  -- Read the status only under the course lock: it cannot change until we commit.
  SELECT * INTO STRICT v_old FROM registrations WHERE id = p_registration_id;
  IF v_old.status = 'cancelled' THEN
    RETURN jsonb_build_object('outcome', 'not-active', 'registration', registrar_registration_row(v_old));
  END IF;
  v_reason := format('swapped from %s to %s', v_old.course_id, p_course_id);
  BEGIN
    v_cancel := registrar_cancel(p_registration_id, p_actor, true);
    v_result := (registrar_register_batch(true, ARRAY[p_course_id], ARRAY[v_old.name], ARRAY[v_old.email],
      ARRAY[v_old.email_key], ARRAY[p_token], ARRAY[NULL::bytea], ARRAY[NULL::bytea], ARRAY[NULL::bytea],
      ARRAY[NULL::bytea], p_actor, true))[1];
    IF v_result ->> 'outcome' = 'created' AND v_result #>> '{registration,status}' = 'waitlisted' THEN
      v_result := jsonb_build_object('outcome', 'no-seat');
    END IF;
    IF v_result ->> 'outcome' <> 'created' THEN
      -- Only to roll the subtransaction back; caught below. Variables keep their values.
      RAISE EXCEPTION 'the new course refused the swap' USING ERRCODE = 'RGS01';
    END IF;
  EXCEPTION WHEN SQLSTATE 'RGS01' THEN
    RETURN v_result;
  END;
  v_new_id := (v_result #>> '{registration,id}')::uuid;
  -- The cancel's entry is the old registration's newest; the enrolment is the new one's only.
  UPDATE registration_events SET reason = v_reason
  WHERE id = (SELECT max(id) FROM registration_events WHERE registration_id = p_registration_id)
     OR registration_id = v_new_id;
  RETURN jsonb_build_object('outcome', 'swapped', 'registration', v_result -> 'registration',
    'cancelled', v_cancel -> 'registration');
END
$$;
