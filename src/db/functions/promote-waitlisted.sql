-- Waitlist order: free seats go to the waitlisted registrations in arrival order (seq), each
-- with a 'promoted' event (actor system, p_reason: what freed the seat). The caller holds the
-- course lock. A promotion keeps the student's place in the term's count (term_students): it
-- was counted when the student was waitlisted. A course with promotion 'offer' offers the
-- seats instead (registrar_offer_seats, offers.sql); seats held by open offers are not free. A
-- promoted registration waiting to swap completes its swap (registrar_complete_swaps, swap.sql).
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- The registrations next in line for the course's free seats (capacity - enrolled - offered): the
-- waitlisted without an open offer, in arrival order, as many as there are free seats.
CREATE OR REPLACE FUNCTION registrar_next_waiting(p_course courses) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
  SELECT id FROM registrations
  WHERE course_id = p_course.id AND status = 'waitlisted' AND offer_until IS NULL
  ORDER BY seq
  LIMIT greatest(p_course.capacity - p_course.enrolled - p_course.offered, 0)
$$;

CREATE OR REPLACE FUNCTION registrar_promote_waitlisted(p_course_id text, p_reason text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_promoted uuid[];
  v_count integer;
BEGIN
  SELECT * INTO STRICT v_course FROM courses WHERE id = p_course_id;
  IF v_course.promotion = 'offer' THEN
    RETURN registrar_offer_seats(p_course_id, regexp_replace(p_reason, '^promoted', 'offered'));
  END IF;
  WITH promoted AS (
    UPDATE registrations SET status = 'enrolled', updated_at = now()
    WHERE id IN (SELECT registrar_next_waiting(v_course))
    RETURNING id, seq
  )
  SELECT coalesce(array_agg(id ORDER BY seq), '{}') INTO v_promoted FROM promoted;
  v_count := cardinality(v_promoted);
  IF v_count > 0 THEN
    PERFORM registrar_record_events(v_promoted, array_fill(p_course_id, ARRAY[v_count]),
      array_fill('promoted'::text, ARRAY[v_count]), NULL, NULL, 'system', array_fill(p_reason, ARRAY[v_count]));
    UPDATE courses SET enrolled = enrolled + v_count, waitlisted = waitlisted - v_count, updated_at = now()
    WHERE id = p_course_id;
    -- A promoted registration that waits to swap: its old registration is cancelled now (swap.sql).
    IF EXISTS (SELECT 1 FROM registrations WHERE id = ANY (v_promoted) AND swap_from IS NOT NULL) THEN
      PERFORM registrar_complete_swaps(v_promoted);
    END IF;
  END IF;
  RETURN v_count;
END
$$;
