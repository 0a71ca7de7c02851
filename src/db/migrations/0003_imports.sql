-- Bulk imports: an uploaded CSV file, processed by the import_csv job in batches. Each batch is
-- one transaction that registers its rows through registrar_register (the rules, emails and
-- webhooks of POST /register) and advances the import's progress, so a restart resumes exactly
-- after the last committed batch and never applies a row twice.

-- Status: 'queued' (uploaded, job waiting) -> 'running' -> 'done' | 'failed'.
CREATE TABLE imports (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  status         text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  file_path      text NOT NULL,
  file_bytes     bigint NOT NULL,
  -- Data rows read so far (the file is streamed, so the total is known when it is done).
  rows           integer NOT NULL DEFAULT 0,
  processed      integer NOT NULL DEFAULT 0,
  created        integer NOT NULL DEFAULT 0,
  existing       integer NOT NULL DEFAULT 0,
  waitlisted     integer NOT NULL DEFAULT 0,
  rejected       integer NOT NULL DEFAULT 0,
  -- The first 100 row errors: [{"line": n, "message": "..."}].
  errors         jsonb NOT NULL DEFAULT '[]',
  -- Resume point: every data row on or before this line of the file is committed.
  done_through_line integer NOT NULL DEFAULT 0,
  failure        text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);
CREATE INDEX imports_newest ON imports (created_at DESC, id);

-- Registers one batch of rows (already parsed and validated) and records the batch's outcome and
-- the import's progress, all in the caller's transaction. Rows come sorted by course (stable, so
-- each course keeps the file's order): locks are taken in one order, so two imports cannot
-- deadlock. p_errors holds the batch's validation errors; p_rows counts every data row the batch
-- covers (valid or not), p_through_line is its last line.
CREATE FUNCTION registrar_import_batch(
  p_import_id uuid, p_lines integer[], p_courses text[], p_names text[], p_emails text[],
  p_email_keys text[], p_tokens text[], p_errors jsonb, p_rows integer, p_through_line integer
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_import imports;
  v_result jsonb;
  v_created integer := 0;
  v_existing integer := 0;
  v_waitlisted integer := 0;
  v_rejected integer := jsonb_array_length(p_errors);
  v_errors jsonb := p_errors;
  v_message text;
BEGIN
  SELECT * INTO STRICT v_import FROM imports WHERE id = p_import_id FOR UPDATE;
  IF v_import.done_through_line >= p_through_line THEN
    RETURN jsonb_build_object('skipped', true); -- this batch committed before a restart
  END IF;
  PERFORM registrar_begin_job_batch();
  FOR i IN 1 .. coalesce(array_length(p_lines, 1), 0) LOOP
    v_result := registrar_register(p_courses[i], p_names[i], p_emails[i], p_email_keys[i], p_tokens[i], NULL, NULL, NULL);
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
          ELSE v_result ->> 'outcome' END;
        v_errors := v_errors || jsonb_build_array(jsonb_build_object('line', p_lines[i], 'message', v_message));
      END CASE;
  END LOOP;
  PERFORM registrar_end_job_batch();
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
