-- The reminder a duplicate registration sends: at most one per registration per 10 minutes.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- Sends a reminder to each of these registrations (duplicates allowed) that is active and was
-- not reminded in the last 10 minutes; answers how many were sent. Rows are locked one at a
-- time in id order, so two calls with overlapping registrations cannot deadlock each other. A
-- call that finds nothing due writes nothing (no transaction id, no WAL).
CREATE OR REPLACE FUNCTION registrar_remind(p_registration_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SET plan_cache_mode = auto SET enable_seqscan = off AS $$
DECLARE
  v_id uuid;
  v_course text;
  v_ids uuid[] := '{}';
  v_courses text[] := '{}';
  v_n integer;
BEGIN
  FOR v_id IN SELECT DISTINCT id FROM unnest(p_registration_ids) AS s (id) WHERE id IS NOT NULL ORDER BY id LOOP
    UPDATE registrations SET reminded_at = now()
    WHERE id = v_id AND status <> 'cancelled'
      AND (reminded_at IS NULL OR reminded_at <= now() - interval '10 minutes')
    RETURNING course_id INTO v_course;
    IF FOUND THEN
      v_ids := v_ids || v_id;
      v_courses := v_courses || v_course;
    END IF;
  END LOOP;
  v_n := cardinality(v_ids);
  IF v_n > 0 THEN
    -- Fresh tokens (NULL): only their hashes are stored, the plaintext rides in the job.
    PERFORM registrar_record_events(v_ids, v_courses, array_fill('reminder'::text, ARRAY[v_n]), NULL, NULL, NULL, NULL);
  END IF;
  RETURN v_n;
END
$$;
