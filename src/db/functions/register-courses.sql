-- Registration for several courses in one request, all or nothing (SPEC "Terms: rules across
-- courses"; docs/design.md, "Several courses at once"). The request's courses are the members of
-- one registrar_register_batch call, decided locked first: its courses locked in id order, then
-- the student's term counts, the order every batch takes them in. The call runs in a
-- subtransaction (the BEGIN ... EXCEPTION block): unless every member was created (and, with
-- p_seats_only, created enrolled), it is rolled back whole, with its registrations, events,
-- emails, history and idempotency rows, and only the members' outcomes remain.
-- Returns {committed, results}: one outcome per course, in the request's order; a member created
-- waitlisted under p_seats_only answers {outcome: no-seat}.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_register_courses(
  p_courses text[], p_name text, p_email text, p_email_key text, p_tokens text[],
  p_key_hashes bytea[], p_request_hash bytea, p_sealed_tokens bytea[], p_seats_only boolean
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_count integer := cardinality(p_courses);
  v_results jsonb[];
  v_committed boolean := true;
BEGIN
  BEGIN
    v_results := registrar_register_batch(true, p_courses,
      array_fill(p_name, ARRAY[v_count]), array_fill(p_email, ARRAY[v_count]), array_fill(p_email_key, ARRAY[v_count]),
      p_tokens, p_key_hashes, array_fill(p_request_hash, ARRAY[v_count]), p_sealed_tokens,
      array_fill(NULL::bytea, ARRAY[v_count]), 'student');
    FOR i IN 1 .. v_count LOOP
      IF v_results[i] ->> 'outcome' = 'created' AND p_seats_only AND v_results[i] #>> '{registration,status}' = 'waitlisted' THEN
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
  RETURN jsonb_build_object('committed', v_committed, 'results', to_jsonb(v_results));
END
$$;
