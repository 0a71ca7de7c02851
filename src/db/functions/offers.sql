-- Waitlist offers (docs/design.md, "Waitlist offers"): a held seat offered to the first waiting
-- registration, its answer (accept, decline) and its expiry. Every function here runs under the
-- course lock (FOR NO KEY UPDATE on courses), taken by the caller or by itself, and decides by
-- clock_timestamp() read after that lock: the offer's end is decided once, in one order with
-- every other change of the course.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- "48 h", "0.5 h": an offer's length as the history and the emails say it.
CREATE OR REPLACE FUNCTION registrar_offer_hours_text(p_hours double precision) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT rtrim(rtrim(to_char(p_hours::numeric, 'FM999990.999999'), '0'), '.') || ' h'
$$;

-- Offers each seat neither taken nor held (capacity - enrolled - offered) to the next waiting
-- registration without an offer, in arrival order, with an 'offered' event (actor system,
-- p_reason) whose email carries the deadline. Needs the course lock. Returns how many.
CREATE OR REPLACE FUNCTION registrar_offer_seats(p_course_id text, p_reason text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_course courses;
  v_offered uuid[];
  v_count integer;
  v_at timestamptz := clock_timestamp();
BEGIN
  SELECT * INTO STRICT v_course FROM courses WHERE id = p_course_id;
  WITH offered AS (
    UPDATE registrations SET offered_at = v_at,
      offer_until = v_at + make_interval(secs => v_course.offer_hours * 3600), updated_at = now()
    WHERE id IN (SELECT registrar_next_waiting(v_course))
    RETURNING id, seq
  )
  SELECT coalesce(array_agg(id ORDER BY seq), '{}') INTO v_offered FROM offered;
  v_count := cardinality(v_offered);
  IF v_count > 0 THEN
    PERFORM registrar_record_events(v_offered, array_fill(p_course_id, ARRAY[v_count]),
      array_fill('offered'::text, ARRAY[v_count]), NULL, NULL, 'system',
      array_fill(format('%s; held for %s', p_reason, registrar_offer_hours_text(v_course.offer_hours)), ARRAY[v_count]));
    UPDATE registration_events e SET offer_until = r.offer_until
    FROM registrations r
    WHERE r.id = ANY (v_offered) AND e.registration_id = r.id AND e.kind = 'offered' AND e.offer_until IS NULL;
    UPDATE courses SET offered = offered + v_count, updated_at = now() WHERE id = p_course_id;
  END IF;
  RETURN v_count;
END
$$;

-- Ends open offers: the registrations leave the waitlist (cancelled), their held seats and term
-- places are freed, each with one event of p_kind ('expired' or 'declined') by p_actor.
-- Needs the course lock; the caller offers the freed seats on.
CREATE OR REPLACE FUNCTION registrar_end_offers(p_course_id text, p_ids uuid[], p_kind text, p_actor text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_term_id text;
  v_ended uuid[];
  v_keys text[];
  v_reasons text[];
  v_count integer;
BEGIN
  SELECT term_id INTO STRICT v_term_id FROM courses WHERE id = p_course_id;
  WITH ended AS (
    UPDATE registrations r SET status = 'cancelled', offered_at = NULL, offer_until = NULL, updated_at = now()
    FROM registrations o
    WHERE r.id = ANY (p_ids) AND o.id = r.id AND r.course_id = p_course_id AND r.offer_until IS NOT NULL
    RETURNING r.id, r.seq, r.email_key,
      registrar_offer_hours_text(extract(epoch FROM o.offer_until - o.offered_at)::double precision / 3600) AS held
  )
  SELECT coalesce(array_agg(id ORDER BY seq), '{}'), array_agg(email_key ORDER BY seq),
         array_agg(CASE p_kind WHEN 'expired' THEN format('offer expired after %s', held)
                               ELSE 'declined the offered seat' END ORDER BY seq)
  INTO v_ended, v_keys, v_reasons FROM ended;
  v_count := cardinality(v_ended);
  IF v_count > 0 THEN
    PERFORM registrar_record_events(v_ended, array_fill(p_course_id, ARRAY[v_count]),
      array_fill(p_kind, ARRAY[v_count]), NULL, NULL, p_actor, v_reasons);
    UPDATE courses SET offered = offered - v_count, waitlisted = waitlisted - v_count, updated_at = now()
    WHERE id = p_course_id;
    -- After the course lock, as every registration batch takes them (course, then term_students),
    -- and in email key order: an UPDATE locks its rows in the order it finds them.
    IF v_term_id IS NOT NULL THEN
      PERFORM 1 FROM term_students WHERE term_id = v_term_id AND email_key = ANY (v_keys) ORDER BY email_key FOR NO KEY UPDATE;
      UPDATE term_students t SET active = active - 1
      FROM unnest(v_keys) AS k (email_key)
      WHERE t.term_id = v_term_id AND t.email_key = k.email_key;
    END IF;
  END IF;
  RETURN v_count;
END
$$;

-- Expires every offer of the course whose deadline has come (offer_until <= p_at, the clock read
-- under the lock) and offers the freed seats on. Needs the course lock. Returns how many expired.
-- A course without open offers (its counter, under the lock) is answered by its row alone.
CREATE OR REPLACE FUNCTION registrar_settle_offers(p_course_id text, p_at timestamptz DEFAULT clock_timestamp()) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM courses WHERE id = p_course_id AND offered > 0) THEN
    RETURN 0;
  END IF;
  v_count := registrar_end_offers(p_course_id, ARRAY(
    SELECT id FROM registrations
    WHERE course_id = p_course_id AND offer_until IS NOT NULL AND offer_until <= p_at
    ORDER BY seq), 'expired', 'system');
  IF v_count > 0 THEN
    PERFORM registrar_offer_seats(p_course_id, 'offered: the offer before it expired');
  END IF;
  RETURN v_count;
END
$$;

-- For a transaction that changes term counts and settles offers of several rows: locks every
-- count it will change in (term, email key) order, after its course locks (the one order every
-- transaction takes them in, docs/design.md "Terms"), then settles. The counts are those of
-- p_email_keys in the terms of p_member_courses (made at 0 if new: the upsert
-- registrar_register_batch locks its counts with) and those of the students whose offers in
-- p_course_ids are due at p_at; then those offers are settled at p_at, and none other: an offer
-- due a moment later would lock its count out of order. Needs the locks of p_course_ids.
CREATE OR REPLACE FUNCTION registrar_lock_counts_and_settle(p_course_ids text[], p_member_courses text[], p_email_keys text[], p_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_course text;
BEGIN
  INSERT INTO term_students AS s (term_id, email_key, active)
  SELECT DISTINCT c.term_id, m.email_key, 0
  FROM (SELECT u.course_id, u.email_key FROM unnest(p_member_courses, p_email_keys) AS u (course_id, email_key)
        UNION
        SELECT r.course_id, r.email_key FROM registrations r
        WHERE r.course_id = ANY (p_course_ids) AND r.offer_until <= p_at) m
  JOIN courses c ON c.id = m.course_id
  WHERE c.term_id IS NOT NULL
  ORDER BY 1, 2
  ON CONFLICT (term_id, email_key) DO UPDATE SET active = s.active;
  FOR v_course IN SELECT id FROM courses WHERE id = ANY (p_course_ids) AND offered > 0 ORDER BY id LOOP
    PERFORM registrar_settle_offers(v_course, p_at);
  END LOOP;
END
$$;

-- The answer to an offer (p_accept: accept, else decline) by p_actor (student: a manage token;
-- admin), under the course lock.
-- Before the deadline: accepted (enrolled) or declined (cancelled, the seat offered on). Else the
-- offers due are settled first, and the outcome says what became of this one: 'expired',
-- 'already-accepted', 'already-declined' or 'no-offer'.
CREATE OR REPLACE FUNCTION registrar_answer_offer(p_registration_id uuid, p_accept boolean, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_course_id text;
  v_before registrations;
  v_after registrations;
  v_last text;
BEGIN
  SELECT course_id INTO v_course_id FROM registrations WHERE id = p_registration_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not-found');
  END IF;
  PERFORM 1 FROM courses WHERE id = v_course_id FOR NO KEY UPDATE;
  -- Read under the course lock: the offer cannot change until we commit.
  SELECT * INTO STRICT v_before FROM registrations WHERE id = p_registration_id;
  IF v_before.offer_until IS NOT NULL AND clock_timestamp() < v_before.offer_until THEN
    IF p_accept THEN
      UPDATE registrations SET status = 'enrolled', offered_at = NULL, offer_until = NULL, updated_at = now()
      WHERE id = p_registration_id RETURNING * INTO v_after;
      PERFORM registrar_record_events(ARRAY[v_after.id], ARRAY[v_course_id], ARRAY['accepted'], NULL, NULL,
        p_actor, ARRAY['accepted the offered seat before its deadline']);
      UPDATE courses SET enrolled = enrolled + 1, offered = offered - 1, waitlisted = waitlisted - 1, updated_at = now()
      WHERE id = v_course_id;
      RETURN jsonb_build_object('outcome', 'accepted', 'registration', registrar_registration_row(v_after));
    END IF;
    PERFORM registrar_end_offers(v_course_id, ARRAY[p_registration_id], 'declined', p_actor);
    PERFORM registrar_offer_seats(v_course_id, 'offered: the offer before it was declined');
    SELECT * INTO STRICT v_after FROM registrations WHERE id = p_registration_id;
    RETURN jsonb_build_object('outcome', 'declined', 'registration', registrar_registration_row(v_after));
  END IF;
  PERFORM registrar_settle_offers(v_course_id);
  SELECT * INTO STRICT v_after FROM registrations WHERE id = p_registration_id;
  SELECT kind INTO v_last FROM registration_events
  WHERE registration_id = p_registration_id AND kind IN ('offered', 'accepted', 'declined', 'expired', 'cancelled')
  ORDER BY id DESC LIMIT 1;
  RETURN jsonb_build_object('outcome', CASE v_last
      WHEN 'expired' THEN 'expired'
      WHEN 'accepted' THEN CASE WHEN v_after.status = 'enrolled' THEN 'already-accepted' ELSE 'no-offer' END
      WHEN 'declined' THEN 'already-declined'
      ELSE 'no-offer' END,
    'registration', registrar_registration_row(v_after));
END
$$;

-- The open offers whose deadline has come, by course: what the job worker's tick settles.
-- VOLATILE, as clock_timestamp() is.
CREATE OR REPLACE FUNCTION registrar_courses_with_due_offers() RETURNS SETOF text
LANGUAGE sql VOLATILE AS $$
  SELECT DISTINCT course_id FROM registrations WHERE offer_until IS NOT NULL AND offer_until <= clock_timestamp()
$$;
