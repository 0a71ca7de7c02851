-- Bulk imports: one batch of parsed CSV rows registered, with the import's progress, in one transaction.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- Imports write each chunk as one registration batch too, one attempt in the mode asked for
-- (p_lock_first: register-batch.sql); a failed attempt rolls back the progress with the rows, and
-- the caller decides what follows (src/db/retry-policy.ts).
CREATE OR REPLACE FUNCTION registrar_import_batch(
  p_lock_first boolean, p_import_id uuid, p_lines integer[], p_courses text[], p_names text[], p_emails text[],
  p_email_keys text[], p_tokens text[], p_errors jsonb, p_rows integer, p_through_line integer
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_import imports;
  v_results jsonb[];
  v_result jsonb;
  v_created integer := 0;
  v_existing integer := 0;
  v_waitlisted integer := 0;
  v_rejected integer := jsonb_array_length(p_errors);
  v_errors jsonb := p_errors;
  v_message text;
  v_none bytea[] := array_fill(NULL::bytea, ARRAY[coalesce(array_length(p_lines, 1), 0)]);
BEGIN
  SELECT * INTO STRICT v_import FROM imports WHERE id = p_import_id FOR UPDATE;
  IF v_import.done_through_line >= p_through_line THEN
    RETURN jsonb_build_object('skipped', true); -- this batch committed before a restart
  END IF;
  v_results := registrar_register_batch(p_lock_first, p_courses, p_names, p_emails, p_email_keys, p_tokens, v_none, v_none, v_none, v_none, 'import');
  FOR i IN 1 .. coalesce(array_length(p_lines, 1), 0) LOOP
    v_result := v_results[i];
    CASE v_result ->> 'outcome'
      WHEN 'created' THEN
        v_created := v_created + 1;
        IF v_result -> 'registration' ->> 'status' = 'waitlisted' THEN v_waitlisted := v_waitlisted + 1; END IF;
      WHEN 'existing' THEN
        v_existing := v_existing + 1;
      ELSE
        v_rejected := v_rejected + 1;
        v_message := CASE v_result ->> 'outcome'
          WHEN 'course-full' THEN format('course "%s" is full (seats and waitlist taken)', p_courses[i])
          WHEN 'registration-closed' THEN format('registration for "%s" is not open', p_courses[i])
          WHEN 'course-not-found' THEN format('there is no course "%s"', p_courses[i])
          WHEN 'limit-reached' THEN format('"%s" already holds %s registrations in term "%s", its limit', p_emails[i], v_result ->> 'limit', v_result ->> 'term')
          WHEN 'not-admitted' THEN format('course "%s" admits through its waiting room: a row cannot register without an admission', p_courses[i])
          ELSE v_result ->> 'outcome' END;
        v_errors := v_errors || jsonb_build_array(jsonb_build_object('line', p_lines[i], 'message', v_message));
      END CASE;
  END LOOP;
  UPDATE imports SET
    rows = rows + p_rows,
    processed = processed + p_rows,
    created = created + v_created,
    existing = existing + v_existing,
    waitlisted = waitlisted + v_waitlisted,
    rejected = rejected + v_rejected,
    errors = CASE WHEN jsonb_array_length(errors) >= 100 THEN errors
      ELSE (SELECT coalesce(jsonb_agg(e ORDER BY (e ->> 'line')::int), '[]')
            FROM (SELECT e FROM jsonb_array_elements(errors || v_errors) e ORDER BY (e ->> 'line')::int LIMIT 100) first) END,
    done_through_line = p_through_line,
    updated_at = now()
  WHERE id = p_import_id;
  RETURN jsonb_build_object('created', v_created, 'existing', v_existing, 'waitlisted', v_waitlisted, 'rejected', v_rejected);
END
$$;
