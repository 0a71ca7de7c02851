-- Waitlist order: free seats go to the waitlisted registrations in arrival order (seq), each
-- with a 'promoted' event (actor system, p_reason: what freed the seat). The caller holds the
-- course lock. A promotion keeps the student's place in the term's count (term_students): it
-- was counted when the student was waitlisted.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_promote_waitlisted(p_course_id text, p_reason text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_promoted uuid[];
  v_count integer;
BEGIN
  SELECT * INTO STRICT v_course FROM courses WHERE id = p_course_id;
  WITH promoted AS (
    UPDATE registrations SET status = 'enrolled', updated_at = now()
    WHERE id IN (
      SELECT id FROM registrations
      WHERE course_id = p_course_id AND status = 'waitlisted'
      ORDER BY seq
      LIMIT greatest(v_course.capacity - v_course.enrolled, 0))
    RETURNING id, seq
  )
  SELECT coalesce(array_agg(id ORDER BY seq), '{}') INTO v_promoted FROM promoted;
  v_count := cardinality(v_promoted);
  IF v_count > 0 THEN
    PERFORM registrar_record_events(v_promoted, array_fill(p_course_id, ARRAY[v_count]),
      array_fill('promoted'::text, ARRAY[v_count]), NULL, NULL, 'system', array_fill(p_reason, ARRAY[v_count]));
    UPDATE courses SET enrolled = enrolled + v_count, waitlisted = waitlisted - v_count, updated_at = now()
    WHERE id = p_course_id;
  END IF;
  RETURN v_count;
END
$$;
