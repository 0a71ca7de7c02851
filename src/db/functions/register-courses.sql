-- Registrations for several courses per request, all or nothing (SPEC "Terms: rules across
-- courses"; docs/design.md, "Several courses at once"), for a batch of such requests in one
-- transaction. Request r names p_counts[r] courses, its members in the member arrays one after
-- another (all of one student). First every course of the batch is locked, in id order, then
-- every term count of its students, in (term, email key) order: the order every registration
-- batch and cancel takes them in, so the batch cannot deadlock against them, and nothing changes
-- under its decisions. A request is decided as the members of a locked-first
-- registrar_register_batch call, in a subtransaction (a BEGIN ... EXCEPTION block): unless every
-- member was created (and, with p_seats_only[r], created enrolled), it is rolled back whole, with
-- its registrations, events, emails, history and idempotency rows, and only the members'
-- outcomes remain. First the whole batch is tried as one call (in arrival order, a member sees
-- what every earlier one did, as it would one request after another): if every request was
-- created whole, that is the answer. Otherwise it is rolled back and each request is decided
-- alone, one after another, each on what the earlier ones kept.
-- Returns one {committed, results} per request: an outcome per course, in the request's order; a
-- member created waitlisted under p_seats_only answers {outcome: no-seat}.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_register_courses(
  p_counts integer[], p_courses text[], p_names text[], p_emails text[], p_email_keys text[], p_tokens text[],
  p_key_hashes bytea[], p_request_hashes bytea[], p_sealed_tokens bytea[], p_seats_only boolean[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_answers jsonb[] := '{}';
  v_all jsonb[];
  v_results jsonb[];
  v_committed boolean;
  v_lo integer := 1;
  v_hi integer;
BEGIN
  PERFORM 1 FROM courses WHERE id = ANY (p_courses) ORDER BY id FOR NO KEY UPDATE;
  -- The students' counts and those of the offers due in these courses, locked in key order; then
  -- those offers end (offers.sql), so an expired offer's seat counts as free below.
  PERFORM registrar_lock_counts_and_settle(p_courses, p_courses, p_email_keys, clock_timestamp());

  IF cardinality(p_counts) > 1 THEN
    BEGIN
      v_all := registrar_register_batch(true, p_courses, p_names, p_emails, p_email_keys, p_tokens, p_key_hashes,
        p_request_hashes, p_sealed_tokens, array_fill(NULL::bytea, ARRAY[cardinality(p_courses)]), 'student', true);
      FOR r IN 1 .. cardinality(p_counts) LOOP
        v_hi := v_lo + p_counts[r] - 1;
        IF EXISTS (SELECT 1 FROM unnest(v_all[v_lo:v_hi]) AS m (result)
                   WHERE m.result ->> 'outcome' <> 'created' OR (p_seats_only[r] AND m.result #>> '{registration,status}' = 'waitlisted')) THEN
          RAISE EXCEPTION 'a course of a request refused' USING ERRCODE = 'RGM01';
        END IF;
        v_answers := v_answers || jsonb_build_object('committed', true, 'results', to_jsonb(v_all[v_lo:v_hi]));
        v_lo := v_hi + 1;
      END LOOP;
      RETURN to_jsonb(v_answers);
    EXCEPTION WHEN SQLSTATE 'RGM01' THEN
      v_answers := '{}';
      v_lo := 1;
    END;
  END IF;

  FOR r IN 1 .. cardinality(p_counts) LOOP
    v_hi := v_lo + p_counts[r] - 1;
    v_committed := true;
    BEGIN
      v_results := registrar_register_batch(true, p_courses[v_lo:v_hi], p_names[v_lo:v_hi], p_emails[v_lo:v_hi],
        p_email_keys[v_lo:v_hi], p_tokens[v_lo:v_hi], p_key_hashes[v_lo:v_hi], p_request_hashes[v_lo:v_hi],
        p_sealed_tokens[v_lo:v_hi], array_fill(NULL::bytea, ARRAY[p_counts[r]]), 'student', true);
      FOR i IN 1 .. p_counts[r] LOOP
        IF v_results[i] ->> 'outcome' = 'created' AND p_seats_only[r] AND v_results[i] #>> '{registration,status}' = 'waitlisted' THEN
          v_results[i] := jsonb_build_object('outcome', 'no-seat');
        END IF;
        IF v_results[i] ->> 'outcome' <> 'created' THEN
          v_committed := false;
        END IF;
      END LOOP;
      IF NOT v_committed THEN
        -- Only to roll the subtransaction back; caught below. Variables keep their values.
        RAISE EXCEPTION 'a course of the request refused' USING ERRCODE = 'RGM01';
      END IF;
    EXCEPTION WHEN SQLSTATE 'RGM01' THEN
      NULL;
    END;
    v_answers := v_answers || jsonb_build_object('committed', v_committed, 'results', to_jsonb(v_results));
    v_lo := v_hi + 1;
  END LOOP;
  RETURN to_jsonb(v_answers);
END
$$;
