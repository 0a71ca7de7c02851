-- A cancel locks its course FOR NO KEY UPDATE, as registration batches do (0008).
--
-- registrar_remind (0011) holds a registration's row lock and then inserts its event, whose
-- foreign key to courses takes FOR KEY SHARE on the course. A cancel holding the course FOR
-- UPDATE blocked that check and then wanted the same registration (the one it cancels, or the
-- first on the waitlist it promotes): a deadlock. FOR NO KEY UPDATE still serializes every seat
-- change of the course (it conflicts with itself and with FOR UPDATE) but not with FOR KEY
-- SHARE: the course row's key never changes. A remaining cycle, a reminder of two registrations
-- (locked in id order) against a cancel of one and promotion of the other, is broken by
-- PostgreSQL's deadlock detector; both callers run their statement again (retryTransaction).

CREATE OR REPLACE FUNCTION registrar_cancel(p_registration_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_course_id text;
  v_before registrations;
  v_after registrations;
BEGIN
  SELECT course_id INTO v_course_id FROM registrations WHERE id = p_registration_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not-found');
  END IF;
  PERFORM 1 FROM courses WHERE id = v_course_id FOR NO KEY UPDATE;
  -- Read the status only under the course lock: it cannot change until we commit.
  SELECT * INTO STRICT v_before FROM registrations WHERE id = p_registration_id;
  IF v_before.status = 'cancelled' THEN
    RETURN jsonb_build_object('outcome', 'already-cancelled', 'registration', registrar_registration_row(v_before));
  END IF;
  UPDATE registrations SET status = 'cancelled', updated_at = now()
  WHERE id = p_registration_id RETURNING * INTO v_after;
  PERFORM registrar_record_event(v_after, 'cancelled', NULL, NULL);
  IF v_before.status = 'enrolled' THEN
    UPDATE courses SET enrolled = enrolled - 1, updated_at = now() WHERE id = v_course_id;
    PERFORM registrar_promote_waitlisted(v_course_id);
  ELSE
    UPDATE courses SET waitlisted = waitlisted - 1, updated_at = now() WHERE id = v_course_id;
  END IF;
  RETURN jsonb_build_object('outcome', 'cancelled', 'registration', registrar_registration_row(v_after));
END
$$;
