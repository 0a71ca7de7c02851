-- Waitlist order: free seats go to the waitlisted registrations in arrival order.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- Fills free seats from the waitlist, first come first served. The caller holds the course lock.
CREATE OR REPLACE FUNCTION registrar_promote_waitlisted(p_course_id text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_promoted registrations;
  v_count integer := 0;
BEGIN
  SELECT * INTO STRICT v_course FROM courses WHERE id = p_course_id;
  FOR v_promoted IN
    UPDATE registrations SET status = 'enrolled', updated_at = now()
    WHERE id IN (
      SELECT id FROM registrations
      WHERE course_id = p_course_id AND status = 'waitlisted'
      ORDER BY seq
      LIMIT greatest(v_course.capacity - v_course.enrolled, 0))
    RETURNING *
  LOOP
    PERFORM registrar_record_event(v_promoted, 'promoted', NULL, NULL);
    v_count := v_count + 1;
  END LOOP;
  IF v_count > 0 THEN
    UPDATE courses SET enrolled = enrolled + v_count, waitlisted = waitlisted - v_count, updated_at = now()
    WHERE id = p_course_id;
  END IF;
  RETURN v_count;
END
$$;
