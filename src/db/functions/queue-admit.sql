-- Admission from a course's waiting room, paced by the measured commit rate of its
-- registrations. docs/design.md, "The waiting room".
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- The admission rate behind estimatedWaitSeconds (SPEC: "measured over the last minute"):
-- admissions per second over the last minute's samples, each sample's admissions over its
-- interval (from the tick before), both weighted by exp(-age / 10 s). A steady rate reads as
-- itself; a rate that changes is followed with a lag of about 10 s instead of the 30 s of the
-- minute's plain average. The pacing changes its rate by multiples within seconds (the bound
-- grows with the registrations of the last 10 s, and stops when the seats are all admitted), so
-- the plain average over a minute that ramped up is a fraction of the rate the coming
-- admissions run at, and the waits it gives are overstated by that fraction. The first
-- sample's interval is unknown (the tick before it is gone or never was): it counts as one
-- second, so the opening tick's burst reads as that many a second until later ticks weigh in
-- (at a minute's age its weight is e^-6: it no longer matters).
CREATE OR REPLACE FUNCTION registrar_admission_rate(p_at timestamptz[], p_admitted integer[], p_now timestamptz)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(sum(w.weight * w.admitted) / nullif(sum(w.weight * w.seconds), 0), 0)
  FROM (
    SELECT s.admitted,
      greatest(coalesce(extract(epoch FROM s.at - lag(s.at) OVER (ORDER BY s.at))::float8, 1), 0) AS seconds,
      exp(-greatest(extract(epoch FROM p_now - s.at)::float8, 0) / 10.0) AS weight
    FROM unnest(p_at, p_admitted) AS s (at, admitted)
  ) w
$$;

-- The end of a course's waiting room at closesAt, once (queue_states.closed_at), under the queue
-- state's row lock taken by registrar_admit: every place that waits, is unverified, or is
-- admitted and not registered becomes `closed` and gets an email of that kind (an admission ends
-- at closesAt at the latest: a registration is refused from then on, and admitted_until is
-- never later). A registration in flight holds its place's row lock (registrar_lock_admission),
-- so this UPDATE waits for it and, re-checking the status, leaves a registered place as it is.
-- Joins are refused from closesAt on (registrar_queue_join_refusal), so nobody comes after.
CREATE OR REPLACE FUNCTION registrar_queue_close(p_course courses, p_state queue_states)
RETURNS jsonb LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
  v_closed integer := 0;
  v_told uuid[];
BEGIN
  IF p_state.closed_at IS NOT NULL THEN RETURN jsonb_build_object('outcome', 'closed', 'closedPlaces', 0); END IF;
  WITH closed AS (
    UPDATE queue_places SET status = 'closed', updated_at = now()
    WHERE course_id = p_course.id AND status IN ('unverified', 'waiting', 'admitted')
    RETURNING id, rank, join_seq
  )
  SELECT count(*), array_agg(id ORDER BY rank NULLS LAST, join_seq) INTO v_closed, v_told FROM closed;
  PERFORM registrar_queue_email(v_told, 'closed');
  UPDATE queue_states SET closed_at = now(), closed_total = v_closed WHERE course_id = p_course.id;
  RETURN jsonb_build_object('outcome', 'closed', 'closedPlaces', v_closed);
END
$$;

-- One admission tick of a course (the job worker's ticker calls it about every 500 ms; any number
-- of tickers, in any process or instance, may call it at once). Under the queue state's row lock
-- (FOR UPDATE), so ticks of one course run one after another and each place is admitted once:
-- 1. orders the places if due and not done (registrar_queue_order);
-- 2. expires the admissions whose time is up (the place goes on: the pointer does not go back);
-- 3. when no seat and no waitlist place is left, every waiting place becomes sold-out at once
--    (an admitted one keeps its admission until it expires: a cancel may still free a seat; an
--    unverified one stays so: its verification finds the course sold out);
-- 4. else admits the next waiting places by rank, as many as keep the admitted and not yet
--    registered within the bound and within the seats and waitlist places left. The bound: at
--    least p_floor; else their average over the last 10 s plus p_headroom_seconds of the
--    registrations committed through the queue per second over the last 10 s (Little's law:
--    what is admitted and not yet registered is the commit rate times the time to register, so
--    the bound keeps that time and lets the rate grow by the headroom).
-- Each place admitted or sold out gets its email (registrar_queue_email, queue-emails.sql) in the
-- tick's transaction: a tick that rolls back emails nobody, one that commits emails each once.
-- The seats left and the admitted not yet registered are read in one statement (one snapshot):
-- a registration committing between two reads could otherwise be counted twice.
CREATE OR REPLACE FUNCTION registrar_admit(p_course text, p_floor integer DEFAULT 50, p_headroom_seconds float8 DEFAULT 2)
RETURNS jsonb LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
  v_state queue_states;
  v_course courses;
  v_expired integer := 0;
  v_admitted integer := 0;
  v_sold_out integer := 0;
  v_room integer;
  v_outstanding integer;
  v_registered_total bigint;
  v_registered integer;
  v_bound integer;
  v_last_rank bigint;
  v_keep integer[];
  -- The places this tick admitted or sold out: each gets its email in this transaction.
  v_told uuid[];
  v_window_registered bigint;
  v_window_outstanding float8;
BEGIN
  SELECT * INTO v_state FROM queue_states WHERE course_id = p_course FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'no-queue'); END IF;
  SELECT * INTO STRICT v_course FROM courses WHERE id = p_course;
  IF v_course.queue_order IS NULL THEN RETURN jsonb_build_object('outcome', 'no-queue'); END IF;
  IF v_course.closes_at IS NOT NULL AND now() >= v_course.closes_at THEN
    RETURN registrar_queue_close(v_course, v_state);
  END IF;
  IF NOT registrar_course_is_open(v_course.opens_at, v_course.closes_at) THEN
    RETURN jsonb_build_object('outcome', 'closed');
  END IF;
  IF v_state.ordered_at IS NULL THEN
    PERFORM registrar_queue_order(p_course);
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = p_course;
  END IF;

  WITH expired AS (
    UPDATE queue_places SET status = 'expired', updated_at = now()
    WHERE course_id = p_course AND status = 'admitted' AND NOT registrar_admission_is_live(status, admitted_until)
    RETURNING 1
  )
  SELECT count(*) INTO v_expired FROM expired;

  SELECT (c.capacity - c.enrolled - c.offered) + (c.waitlist_capacity - c.waitlisted),
         (SELECT count(*) FROM queue_places q WHERE q.course_id = p_course AND q.status = 'admitted'),
         (SELECT count(*) FROM queue_places q WHERE q.course_id = p_course AND q.status = 'registered')
    INTO v_room, v_outstanding, v_registered_total
    FROM courses c WHERE c.id = p_course;
  v_registered := v_registered_total - v_state.registered_total;

  IF v_room <= 0 THEN
    -- Once sold out, joins are refused (registrar_queue_join), so nobody waits behind the pointer.
    IF v_state.sold_out_at IS NULL THEN
      WITH sold AS (
        UPDATE queue_places SET status = 'sold-out', updated_at = now()
        WHERE course_id = p_course AND rank > v_state.passed AND status = 'waiting'
        RETURNING id
      )
      SELECT count(*), array_agg(id) INTO v_sold_out, v_told FROM sold;
      PERFORM registrar_queue_email(v_told, 'sold-out');
      v_state.sold_out_at := now();
    END IF;
  ELSE
    v_state.sold_out_at := NULL;
    -- The samples of the last 10 s (this tick's included) set the bound.
    SELECT coalesce(sum(r), 0) + v_registered, (coalesce(sum(o), 0) + v_outstanding)::float8 / (count(*) + 1)
      INTO v_window_registered, v_window_outstanding
      FROM unnest(v_state.sample_at, v_state.sample_registered, v_state.sample_outstanding) AS s (at, r, o)
      WHERE s.at > now() - interval '10 seconds';
    v_bound := greatest(p_floor, ceil(v_window_outstanding + v_window_registered / 10.0 * p_headroom_seconds)::integer);
    IF least(v_bound, v_room) > v_outstanding THEN
      WITH next AS (
        SELECT q.id FROM queue_places q
        WHERE q.course_id = p_course AND q.status = 'waiting' AND q.rank > v_state.passed
        ORDER BY q.rank
        LIMIT least(v_bound, v_room) - v_outstanding
        FOR NO KEY UPDATE
      ), admitted AS (
        UPDATE queue_places q SET status = 'admitted', admitted_at = now(),
          admitted_until = least(now() + make_interval(secs => v_course.queue_admission_seconds), coalesce(v_course.closes_at, 'infinity')),
          updated_at = now()
        FROM next WHERE q.id = next.id
        RETURNING q.id, q.rank
      )
      SELECT count(*), max(rank), array_agg(id ORDER BY rank) INTO v_admitted, v_last_rank, v_told FROM admitted;
      PERFORM registrar_queue_email(v_told, 'admitted');
    END IF;
  END IF;

  -- This tick's sample; only the last minute's are kept.
  v_keep := ARRAY(SELECT i FROM generate_subscripts(v_state.sample_at, 1) AS i WHERE v_state.sample_at[i] > now() - interval '60 seconds' ORDER BY i);
  v_state.sample_at := ARRAY(SELECT v_state.sample_at[k.i] FROM unnest(v_keep) WITH ORDINALITY AS k (i, o) ORDER BY k.o) || now();
  v_state.sample_admitted := ARRAY(SELECT v_state.sample_admitted[k.i] FROM unnest(v_keep) WITH ORDINALITY AS k (i, o) ORDER BY k.o) || v_admitted;
  v_state.sample_registered := ARRAY(SELECT v_state.sample_registered[k.i] FROM unnest(v_keep) WITH ORDINALITY AS k (i, o) ORDER BY k.o) || v_registered;
  v_state.sample_outstanding := ARRAY(SELECT v_state.sample_outstanding[k.i] FROM unnest(v_keep) WITH ORDINALITY AS k (i, o) ORDER BY k.o) || (v_outstanding + v_admitted);

  UPDATE queue_states SET
    passed = greatest(passed, coalesce(v_last_rank, 0)),
    admitted_total = admitted_total + v_admitted,
    expired_total = expired_total + v_expired,
    sold_out_total = sold_out_total + v_sold_out,
    registered_total = v_registered_total,
    sold_out_at = v_state.sold_out_at,
    sample_at = v_state.sample_at, sample_admitted = v_state.sample_admitted,
    sample_registered = v_state.sample_registered, sample_outstanding = v_state.sample_outstanding,
    admission_rate = registrar_admission_rate(v_state.sample_at, v_state.sample_admitted, now())
  WHERE course_id = p_course;
  RETURN jsonb_build_object('outcome', CASE WHEN v_room <= 0 THEN 'sold-out' ELSE 'admitting' END,
    'admitted', v_admitted, 'expired', v_expired, 'soldOut', v_sold_out,
    'outstanding', v_outstanding + v_admitted, 'bound', v_bound, 'registered', v_registered);
END
$$;

-- The courses whose waiting room may have something to do: a queue, and open now, or past
-- closesAt and not yet closed (registrar_queue_close).
CREATE OR REPLACE FUNCTION registrar_queued_courses_open() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
  SELECT c.id FROM courses c JOIN queue_states s ON s.course_id = c.id
  WHERE c.queue_order IS NOT NULL
    AND (registrar_course_is_open(c.opens_at, c.closes_at) OR (c.closes_at IS NOT NULL AND now() >= c.closes_at AND s.closed_at IS NULL))
  ORDER BY c.id
$$;
