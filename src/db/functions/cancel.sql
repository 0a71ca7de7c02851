-- Cancelling a registration; a freed seat goes to the waitlist in the same transaction, and the
-- student's place in the term's count (term_students) is freed with it. p_actor: who cancels
-- (student: a manage token; admin), kept in the history. p_settled: the caller holds the course
-- lock and has settled its due offers (registrar_lock_counts_and_settle, offers.sql), with this
-- student's count locked among them. p_also: "course\nemail key" of the old registrations of
-- waiting swaps the cancel's promotion completes, locked first (courses in id order, then their
-- term counts) when an earlier attempt found them held (RGW01, swap.sql).
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_cancel(p_registration_id uuid, p_actor text, p_settled boolean DEFAULT false,
  p_also text[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_course_id text;
  v_term_id text;
  v_offered integer;
  v_email_key text;
  v_before registrations;
  v_after registrations;
BEGIN
  SELECT course_id, email_key INTO v_course_id, v_email_key FROM registrations WHERE id = p_registration_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not-found');
  END IF;
  IF cardinality(p_also) = 0 THEN
    SELECT term_id, offered INTO v_term_id, v_offered FROM courses WHERE id = v_course_id FOR NO KEY UPDATE;
  ELSE
    PERFORM 1 FROM courses WHERE id = ANY (v_course_id || registrar_also_courses(p_also)) ORDER BY id FOR NO KEY UPDATE;
    SELECT term_id, offered INTO v_term_id, v_offered FROM courses WHERE id = v_course_id;
  END IF;
  -- Offers whose deadline has come end first (offers.sql): this one may be among them. Their
  -- students' counts and this student's (and p_also's) are locked together, in key order.
  IF (v_offered > 0 OR cardinality(p_also) > 0) AND NOT p_settled THEN
    PERFORM registrar_lock_counts_and_settle(v_course_id || registrar_also_courses(p_also),
      v_course_id || registrar_also_courses(p_also), v_email_key || registrar_also_keys(p_also), clock_timestamp());
  END IF;
  -- Read the status only under the course lock: it cannot change until we commit.
  SELECT * INTO STRICT v_before FROM registrations WHERE id = p_registration_id;
  IF v_before.status = 'cancelled' THEN
    RETURN jsonb_build_object('outcome', 'already-cancelled', 'registration', registrar_registration_row(v_before));
  END IF;
  UPDATE registrations SET status = 'cancelled', offered_at = NULL, offer_until = NULL, updated_at = now()
  WHERE id = p_registration_id RETURNING * INTO v_after;
  PERFORM registrar_record_events(ARRAY[v_after.id], ARRAY[v_after.course_id], ARRAY['cancelled'], NULL, NULL,
    p_actor, ARRAY[format('cancelled by %s while %s', CASE p_actor WHEN 'admin' THEN 'an admin' ELSE 'the student' END, v_before.status)]);
  -- After the course lock, as every registration batch takes them (course, then term_students):
  -- the two cannot deadlock.
  IF v_term_id IS NOT NULL THEN
    UPDATE term_students SET active = active - 1 WHERE term_id = v_term_id AND email_key = v_before.email_key;
  END IF;
  IF v_before.status = 'enrolled' THEN
    UPDATE courses SET enrolled = enrolled - 1, updated_at = now() WHERE id = v_course_id;
    PERFORM registrar_promote_waitlisted(v_course_id, 'promoted: seat freed by a cancel');
  ELSIF v_before.offer_until IS NOT NULL THEN
    -- The seat held for this registration's offer goes to the next.
    UPDATE courses SET waitlisted = waitlisted - 1, offered = offered - 1, updated_at = now() WHERE id = v_course_id;
    PERFORM registrar_promote_waitlisted(v_course_id, 'promoted: an offered seat freed by a cancel');
  ELSE
    UPDATE courses SET waitlisted = waitlisted - 1, updated_at = now() WHERE id = v_course_id;
  END IF;
  RETURN jsonb_build_object('outcome', 'cancelled', 'registration', registrar_registration_row(v_after));
END
$$;
