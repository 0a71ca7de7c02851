-- A swap (SPEC "Terms: rules across courses"; docs/design.md, "Swaps"): the student of an active
-- registration is enrolled in another course and the old registration is cancelled, in one
-- transaction, or nothing changes (invariant 9). Both courses are locked in id order, then the
-- student's term counts in (term, email key) order: the order every registration batch and cancel
-- takes them in, so a swap cannot deadlock against them. Under those locks, in a subtransaction,
-- the old registration is cancelled (registrar_cancel: its seat goes to its course's waitlist or
-- an offer, its term place is freed) and the new one is decided as a locked-first member of
-- registrar_register_batch (window, queue, registered already, term limit, seat): unless it was
-- created enrolled, the subtransaction rolls back whole. So a swap within a term leaves the
-- term's count as it was (one out, one in), and a swap into another term's course counts there.
-- Both history entries say "swapped from X to Y"; their emails and webhooks are the cancel's and
-- the enrolment's. p_actor: student (a manage token) or admin.
--
-- With p_wait and no free seat, the student waits on the new course's waitlist instead: a
-- waitlisted registration (counted in its term, as every waitlist place is) marked swap_from,
-- the old one left as it is; a swap at once of the old one withdraws it (cancelled first, in the
-- subtransaction, so a refusal leaves it waiting). When the new one is promoted (registrar_promote_waitlisted, under
-- the new course's lock), registrar_complete_swaps cancels the old one in that transaction: the
-- student never holds neither, and holds both only while waiting.
-- p_also: "course\nemail key" of old registrations of waiting swaps this transaction's
-- promotions complete, to lock first (RGW01, below).
-- Returns {outcome: swapped, registration, cancelled}, {outcome: waiting, registration} or
-- {outcome: <refusal>, ...}.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- The courses and the email keys of p_also ("course\nemail key").
CREATE OR REPLACE FUNCTION registrar_also_courses(p_also text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(split_part(a, E'\n', 1) ORDER BY o), '{}') FROM unnest(p_also) WITH ORDINALITY AS u (a, o)
$$;
CREATE OR REPLACE FUNCTION registrar_also_keys(p_also text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(split_part(a, E'\n', 2) ORDER BY o), '{}') FROM unnest(p_also) WITH ORDINALITY AS u (a, o)
$$;

CREATE OR REPLACE FUNCTION registrar_swap(p_registration_id uuid, p_course_id text, p_token text, p_actor text,
  p_wait boolean DEFAULT false, p_also text[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_old registrations;
  v_new courses;
  v_cancel jsonb;
  v_result jsonb;
  v_new_id uuid;
  v_reason text;
  v_courses text[];
  v_withdrawn registrations;
BEGIN
  SELECT * INTO v_old FROM registrations WHERE id = p_registration_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not-found');
  END IF;
  IF v_old.course_id = p_course_id THEN
    RETURN jsonb_build_object('outcome', 'same-course');
  END IF;
  -- A waiting swap out of this registration is withdrawn by a swap at once (below): its course
  -- and the student's count there are locked with the others. Read before the locks, it is read
  -- again under the old course's lock (which every waiting swap out of it takes).
  v_courses := ARRAY[v_old.course_id, p_course_id]
    || coalesce((SELECT array_agg(course_id) FROM registrations WHERE swap_from = p_registration_id AND status = 'waitlisted'), '{}')
    || registrar_also_courses(p_also);
  PERFORM 1 FROM courses WHERE id = ANY (v_courses) ORDER BY id FOR NO KEY UPDATE;
  SELECT * INTO v_new FROM courses WHERE id = p_course_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'course-not-found');
  END IF;
  -- The student's counts in both courses' terms (and p_also's) and those of the offers due in
  -- these courses, locked in key order; then offers whose deadline has come end (offers.sql):
  -- the old registration's may be among them. The cancel and the registration below find them settled.
  PERFORM registrar_lock_counts_and_settle(v_courses, v_courses,
    array_fill(v_old.email_key, ARRAY[cardinality(v_courses) - cardinality(p_also)]) || registrar_also_keys(p_also), clock_timestamp());
  -- Read the status only under the course lock: it cannot change until we commit.
  SELECT * INTO STRICT v_old FROM registrations WHERE id = p_registration_id;
  IF v_old.status = 'cancelled' THEN
    RETURN jsonb_build_object('outcome', 'not-active', 'registration', registrar_registration_row(v_old));
  END IF;
  SELECT * INTO v_withdrawn FROM registrations WHERE swap_from = p_registration_id AND status = 'waitlisted';
  IF FOUND AND NOT v_withdrawn.course_id = ANY (v_courses) THEN
    -- A waiting swap made after the read above: its course is locked first on the next attempt.
    RAISE EXCEPTION 'a swap needs course % locked first', v_withdrawn.course_id
      USING ERRCODE = 'RGW01', DETAIL = v_withdrawn.course_id || E'\n' || v_old.email_key;
  END IF;
  v_reason := format('swapped from %s to %s', v_old.course_id, p_course_id);
  BEGIN
    -- The student changed their mind: a swap at once elsewhere withdraws the waiting one (its
    -- place and term place freed first, as a cancel's), or, refused, leaves it as it was. Into
    -- the course it waits on, the student is registered there already.
    IF v_withdrawn.id IS NOT NULL AND v_withdrawn.course_id <> p_course_id THEN
      PERFORM registrar_cancel(v_withdrawn.id, p_actor, true);
      UPDATE registration_events SET reason = format('swap from %s to %s withdrawn: swapped to %s', v_old.course_id, v_withdrawn.course_id, p_course_id)
      WHERE id = (SELECT max(id) FROM registration_events WHERE registration_id = v_withdrawn.id);
    END IF;
    v_cancel := registrar_cancel(p_registration_id, p_actor, true);
    v_result := (registrar_register_batch(true, ARRAY[p_course_id], ARRAY[v_old.name], ARRAY[v_old.email],
      ARRAY[v_old.email_key], ARRAY[p_token], ARRAY[NULL::bytea], ARRAY[NULL::bytea], ARRAY[NULL::bytea],
      ARRAY[NULL::bytea], p_actor, true))[1];
    IF v_result ->> 'outcome' = 'created' AND v_result #>> '{registration,status}' = 'waitlisted' THEN
      v_result := jsonb_build_object('outcome', 'no-seat');
    END IF;
    IF v_result ->> 'outcome' <> 'created' THEN
      -- Only to roll the subtransaction back; caught below. Variables keep their values.
      RAISE EXCEPTION 'the new course refused the swap' USING ERRCODE = 'RGS01';
    END IF;
  EXCEPTION WHEN SQLSTATE 'RGS01' THEN
    IF NOT (p_wait AND v_result ->> 'outcome' IN ('no-seat', 'course-full')) THEN
      RETURN v_result;
    END IF;
  END;
  -- No seat free: "wait" applies. A course that offers its seats cannot complete a swap at a
  -- promotion (an offer is answered later, by the student); one waiting swap per registration.
  IF v_result ->> 'outcome' IN ('no-seat', 'course-full') THEN
    IF v_new.promotion = 'offer' THEN
      RETURN jsonb_build_object('outcome', 'wait-with-offers');
    ELSIF v_new.waitlist_capacity = 0 THEN
      RETURN jsonb_build_object('outcome', 'no-waitlist');
    ELSIF EXISTS (SELECT 1 FROM registrations WHERE swap_from = p_registration_id AND status = 'waitlisted') THEN
      RETURN jsonb_build_object('outcome', 'swap-waiting', 'course',
        (SELECT course_id FROM registrations WHERE swap_from = p_registration_id AND status = 'waitlisted' LIMIT 1));
    ELSIF v_result ->> 'outcome' = 'course-full' THEN
      RETURN v_result;
    END IF;
  END IF;
  IF v_result ->> 'outcome' = 'no-seat' THEN
    -- Waiting: the new registration on the waitlist, the old one kept (no seat is free now, under
    -- these locks: the registration is waitlisted, or refused as the batch refuses).
    v_result := (registrar_register_batch(true, ARRAY[p_course_id], ARRAY[v_old.name], ARRAY[v_old.email],
      ARRAY[v_old.email_key], ARRAY[p_token], ARRAY[NULL::bytea], ARRAY[NULL::bytea], ARRAY[NULL::bytea],
      ARRAY[NULL::bytea], p_actor, true))[1];
    IF v_result ->> 'outcome' <> 'created' THEN
      RETURN v_result;
    END IF;
    -- Under these locks nothing freed a seat since the attempt above; a registration enrolled
    -- here would leave the student holding both courses with no swap to complete.
    IF v_result #>> '{registration,status}' IS DISTINCT FROM 'waitlisted' THEN
      RAISE EXCEPTION 'a waiting swap into % was not waitlisted but %', p_course_id, v_result #>> '{registration,status}';
    END IF;
    v_new_id := (v_result #>> '{registration,id}')::uuid;
    UPDATE registrations SET swap_from = p_registration_id WHERE id = v_new_id;
    UPDATE registration_events SET reason = format('waitlisted to swap from %s to %s; position %s',
      v_old.course_id, p_course_id, v_result #>> '{registration,waitlist_position}')
    WHERE registration_id = v_new_id;
    RETURN jsonb_build_object('outcome', 'waiting', 'registration', v_result -> 'registration', 'replaces', registrar_registration_row(v_old));
  END IF;
  v_new_id := (v_result #>> '{registration,id}')::uuid;
  -- The cancel's entry is the old registration's newest; the enrolment is the new one's only.
  UPDATE registration_events SET reason = v_reason
  WHERE id = (SELECT max(id) FROM registration_events WHERE registration_id = p_registration_id)
     OR registration_id = v_new_id;
  RETURN jsonb_build_object('outcome', 'swapped', 'registration', v_result -> 'registration',
    'cancelled', v_cancel -> 'registration');
END
$$;

-- Completes the waiting swaps among p_promoted, just enrolled in their new course (whose lock
-- the caller holds): each one whose old registration is still active cancels it now, in this
-- transaction, by the system ("swapped from X to Y"), freeing its seat (promoted or offered on,
-- which may complete another swap) and its term place. The old course's lock and the student's
-- count there are taken out of the lock order (after the new course's, and after counts of other
-- students), so only if free at once (NOWAIT; held by this transaction already, they are): else
-- the transaction fails with RGW01, its DETAIL "course\nemail key", and the caller runs it again
-- with those locked first, in order (src/db/swap-locks.ts). A wait never happens out of order,
-- so no deadlock can form. An old registration cancelled meanwhile leaves an ordinary promotion.
CREATE OR REPLACE FUNCTION registrar_complete_swaps(p_promoted uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_swap record;
  v_old registrations;
  v_course courses;
  v_reason text;
BEGIN
  FOR v_swap IN
    SELECT n.id, n.course_id, n.swap_from, o.course_id AS old_course, o.email_key
    FROM registrations n JOIN registrations o ON o.id = n.swap_from
    WHERE n.id = ANY (p_promoted) ORDER BY n.seq
  LOOP
    BEGIN
      SELECT * INTO STRICT v_course FROM courses WHERE id = v_swap.old_course FOR NO KEY UPDATE NOWAIT;
      IF v_course.term_id IS NOT NULL THEN
        PERFORM 1 FROM term_students WHERE term_id = v_course.term_id AND email_key = v_swap.email_key FOR NO KEY UPDATE NOWAIT;
      END IF;
      -- An offer of the old course whose deadline has come still holds its seat: the seat this
      -- cancel frees must not be offered beside it (invariant 9). Settling needs the counts of
      -- those offers' students, in lock order: the attempt locked first settles them
      -- (registrar_lock_counts_and_settle), as a lock found held does.
      IF v_course.offered > 0 AND EXISTS (SELECT 1 FROM registrations
          WHERE course_id = v_swap.old_course AND offer_until <= clock_timestamp()) THEN
        RAISE EXCEPTION 'course % holds an offer past its deadline', v_swap.old_course USING ERRCODE = 'lock_not_available';
      END IF;
    EXCEPTION WHEN lock_not_available THEN
      RAISE EXCEPTION 'a waiting swap needs course % locked first', v_swap.old_course
        USING ERRCODE = 'RGW01', DETAIL = v_swap.old_course || E'\n' || v_swap.email_key;
    END;
    -- Read under the old course's lock.
    SELECT * INTO STRICT v_old FROM registrations WHERE id = v_swap.swap_from;
    CONTINUE WHEN v_old.status = 'cancelled';
    v_reason := format('swapped from %s to %s', v_old.course_id, v_swap.course_id);
    UPDATE registration_events SET reason = 'promoted: ' || v_reason WHERE registration_id = v_swap.id AND kind = 'promoted';
    UPDATE registrations SET status = 'cancelled', offered_at = NULL, offer_until = NULL, updated_at = now() WHERE id = v_old.id;
    PERFORM registrar_record_events(ARRAY[v_old.id], ARRAY[v_old.course_id], ARRAY['cancelled'], NULL, NULL, 'system', ARRAY[v_reason]);
    IF v_course.term_id IS NOT NULL THEN
      UPDATE term_students SET active = active - 1 WHERE term_id = v_course.term_id AND email_key = v_old.email_key;
    END IF;
    IF v_old.status = 'enrolled' THEN
      UPDATE courses SET enrolled = enrolled - 1, updated_at = now() WHERE id = v_old.course_id;
      PERFORM registrar_promote_waitlisted(v_old.course_id, 'promoted: seat freed by a swap');
    ELSIF v_old.offer_until IS NOT NULL THEN
      UPDATE courses SET waitlisted = waitlisted - 1, offered = offered - 1, updated_at = now() WHERE id = v_old.course_id;
      PERFORM registrar_promote_waitlisted(v_old.course_id, 'promoted: an offered seat freed by a swap');
    ELSE
      UPDATE courses SET waitlisted = waitlisted - 1, updated_at = now() WHERE id = v_old.course_id;
    END IF;
  END LOOP;
END
$$;
