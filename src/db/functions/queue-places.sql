-- A course's waiting room: the order of its places (once, at opensAt), a place as the application
-- reads it (with its position, arithmetic on its rank and the course's admission pointer), and
-- the admission a registration holds. docs/design.md, "The waiting room".
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- The one rule of a live admission: a place admitted whose time to register has not run out.
-- Past admitted_until it no longer registers, reads as expired and is counted as lapsed, whether
-- or not the tick has marked it expired yet; the lock a registration takes, the probes of the
-- shedder, the reads, the tick and the figures all ask this. One expression with no FROM, so
-- the planner inlines it.
CREATE OR REPLACE FUNCTION registrar_admission_is_live(p_status queue_place_status, p_admitted_until timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT p_status = 'admitted' AND p_admitted_until > now()
$$;

-- The random order's key of a place: anyone given the seed (shown once ordered) and the places
-- recomputes the order by sorting on it.
CREATE OR REPLACE FUNCTION registrar_queue_shuffle_key(p_seed bytea, p_place_id uuid) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
  SELECT sha256(p_seed || convert_to(p_place_id::text, 'UTF8'))
$$;

-- The lock that orders a course's places against its joins before opensAt: each such join holds
-- it shared, the ordering exclusively, so the ordering waits for every join in flight and sees
-- it. An advisory lock rather than a row lock: a shared row lock writes the row (and a multixact)
-- for every join; this one lives in the lock table only. Transaction-scoped, so it is released
-- at commit, also through PgBouncer. Two int4 keys (7211304, the course id's hash): a key
-- space apart from the single int8 keys of the Idempotency-Keys and the delivery figures; two
-- courses whose ids hash alike only wait for each other.
CREATE OR REPLACE FUNCTION registrar_queue_join_lock_key(p_course text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT hashtext(p_course)
$$;

-- Orders the course's places once, when due (opensAt passed, or no opensAt): every place that
-- joined before gets its rank, 1..n, by the shuffle key (random) or by arrival (arrival). Under
-- the queue state's row lock (FOR UPDATE), which serializes it with the ticks and the joins
-- after opensAt, and the join lock taken exclusively (registrar_queue_join_lock_key), so it
-- sees every join before opensAt. Called by the admission tick, by a join after opensAt and by
-- the first read of a place after opensAt; whoever comes first orders, the others find
-- ordered_at set.
CREATE OR REPLACE FUNCTION registrar_queue_order(p_course text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_state queue_states;
  v_course courses;
  v_ranked bigint;
BEGIN
  -- Not due: no lock at all, so reads and joins before opensAt never wait on one another here.
  SELECT * INTO v_course FROM courses WHERE id = p_course;
  IF NOT FOUND OR v_course.queue_order IS NULL OR (v_course.opens_at IS NOT NULL AND now() < v_course.opens_at) THEN RETURN; END IF;
  SELECT * INTO v_state FROM queue_states WHERE course_id = p_course FOR UPDATE;
  IF NOT FOUND OR v_state.ordered_at IS NOT NULL THEN RETURN; END IF;
  PERFORM pg_advisory_xact_lock(7211304, registrar_queue_join_lock_key(p_course));
  WITH ordered AS (
    SELECT q.id, row_number() OVER (ORDER BY
      CASE WHEN v_course.queue_order = 'random' THEN registrar_queue_shuffle_key(v_state.seed, q.id) END, q.join_seq) AS rank
    FROM queue_places q WHERE q.course_id = p_course AND q.rank IS NULL AND q.status = 'waiting'
  )
  UPDATE queue_places q SET rank = o.rank, updated_at = now() FROM ordered o WHERE q.id = o.id;
  GET DIAGNOSTICS v_ranked = ROW_COUNT;
  UPDATE queue_states SET ordered_at = now(), ranked = v_ranked WHERE course_id = p_course;
END
$$;

-- The lock a place takes to enter the order (a join, a verification), and the queue state under
-- it. Before opensAt: the course's join lock, shared, so places enter side by side and the
-- ordering, which takes it exclusively, waits for each one in flight: none is left unranked. A
-- place that finds the places ordered once it holds the lock raises 40001: run again
-- (src/db/retry-policy.ts), it starts after opensAt. From opensAt on: orders the places if
-- nobody has yet and locks the queue state's row (FOR UPDATE), so the place ranks itself next,
-- ranked + 1, and ranks have no gaps. The answer's ordered_at is set on that path only.
CREATE OR REPLACE FUNCTION registrar_queue_enter(p_course courses) RETURNS queue_states
LANGUAGE plpgsql AS $$
DECLARE
  v_state queue_states;
BEGIN
  IF p_course.opens_at IS NOT NULL AND now() < p_course.opens_at THEN
    PERFORM pg_advisory_xact_lock_shared(7211304, registrar_queue_join_lock_key(p_course.id));
    -- Read after the lock: an ordering that committed meanwhile is seen.
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = p_course.id;
    IF v_state.ordered_at IS NOT NULL THEN
      RAISE EXCEPTION 'the places of % were ordered while this place waited to enter', p_course.id USING ERRCODE = 'serialization_failure';
    END IF;
  ELSE
    PERFORM registrar_queue_order(p_course.id);
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = p_course.id FOR UPDATE;
  END IF;
  RETURN v_state;
END
$$;

-- A place as the application reads it (QueuePlaceRow). position: 1 for the next place to be
-- admitted; rank minus the pointer, so O(1) (a place ahead that left still counts until the
-- pointer passes it). The estimate: position divided by the admission rate of the last minute
-- (registrar_admission_rate, queue-admit.sql); NULL while nothing was admitted in it. An
-- admission past its time reads as expired before the next tick records it (it no longer
-- registers: registrar_lock_admission). One expression with no FROM, so the planner inlines it
-- into the query that calls it (no function call per place read).
CREATE OR REPLACE FUNCTION registrar_queue_place_row(p queue_places, s queue_states) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', p.id, 'course_id', p.course_id, 'name', p.name, 'email', p.email,
    'status', CASE WHEN p.status = 'admitted' AND NOT registrar_admission_is_live(p.status, p.admitted_until) THEN 'expired' ELSE p.status::text END,
    'rank', p.rank,
    'position', CASE WHEN p.status = 'waiting' THEN p.rank - s.passed END,
    'ahead', CASE WHEN p.status = 'waiting' THEN p.rank - s.passed - 1 END,
    'estimated_wait_seconds', CASE WHEN p.status = 'waiting' AND s.admission_rate > 0 THEN ceil((p.rank - s.passed) / s.admission_rate)::bigint END,
    'joined_at', p.joined_at, 'admitted_until', p.admitted_until)
$$;

-- A place read by id, ordering the course's places first if that is due and not done.
CREATE OR REPLACE FUNCTION registrar_queue_place(p_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_place queue_places;
  v_state queue_states;
BEGIN
  SELECT * INTO v_place FROM queue_places WHERE id = p_id;
  IF NOT FOUND THEN RETURN NULL; END IF;
  SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = v_place.course_id;
  IF v_state.ordered_at IS NULL THEN
    PERFORM registrar_queue_order(v_place.course_id);
    SELECT * INTO STRICT v_place FROM queue_places WHERE id = p_id;
    SELECT * INTO STRICT v_state FROM queue_states WHERE course_id = v_place.course_id;
  END IF;
  RETURN registrar_queue_place_row(v_place, v_state);
END
$$;

-- Many places read at once (the batched reads of GET /queue/{id}): each lookup's place as
-- registrar_queue_place builds it, and what its token hash (hex text, or NULL) is to it (NULL: none
-- of its tokens; else whether it was made for an email). The ordering, when due for a course of
-- the batch, runs first, once per course; the read after it is a statement of its own, so it sees
-- the ranks. Then one join over the places and their states: no function call per place.
-- Unknown ids are left out; n is the lookup's position in the arrays.
CREATE OR REPLACE FUNCTION registrar_queue_places_read(p_ids uuid[], p_token_hashes text[])
RETURNS TABLE (n bigint, place jsonb, emailed boolean) LANGUAGE plpgsql AS $$
BEGIN
  -- Only when some queued course is due and not ordered (a moment after its opensAt): the
  -- batch's places are looked up for it then, not on every read before or after.
  IF EXISTS (SELECT 1 FROM queue_states s JOIN courses c ON c.id = s.course_id
             WHERE s.ordered_at IS NULL AND c.queue_order IS NOT NULL AND (c.opens_at IS NULL OR c.opens_at <= now())) THEN
    PERFORM registrar_queue_order(s.course_id) FROM queue_states s
    WHERE s.ordered_at IS NULL AND s.course_id IN (SELECT q.course_id FROM queue_places q WHERE q.id = ANY (p_ids));
  END IF;
  RETURN QUERY
    SELECT k.n, registrar_queue_place_row(p, s),
      (SELECT t.emailed FROM queue_tokens t WHERE t.token_hash = decode(k.token_hash, 'hex') AND t.place_id = k.id)
    FROM unnest(p_ids, p_token_hashes) WITH ORDINALITY AS k (id, token_hash, n)
    JOIN queue_places p ON p.id = k.id
    JOIN queue_states s ON s.course_id = p.course_id;
END
$$;

-- Whether this admission is this student's, for this course, in any status: a forged one, or
-- another student's, is not. Two index probes (the token by its admission hash, its place by
-- id); LANGUAGE sql, so it is inlined where it is called.
CREATE OR REPLACE FUNCTION registrar_admission_is_students(p_admission_hash bytea, p_course text, p_email_key text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM queue_tokens t JOIN queue_places q ON q.id = t.place_id
    WHERE t.admission_hash = p_admission_hash AND q.course_id = p_course AND q.email_key = p_email_key)
$$;

-- The place whose admission a registration presents (the admission of any of its tokens),
-- locked (FOR NO KEY UPDATE) until the registration commits, so a concurrent expiry or a second
-- use, with this token's admission or another's, waits and then finds it taken; NULL unless it
-- is this course's and this student's, admitted, and within its time.
CREATE OR REPLACE FUNCTION registrar_lock_admission(p_admission_hash bytea, p_course text, p_email_key text) RETURNS uuid
LANGUAGE sql AS $$
  SELECT q.id FROM queue_tokens t JOIN queue_places q ON q.id = t.place_id
  WHERE t.admission_hash = p_admission_hash AND q.course_id = p_course AND q.email_key = p_email_key
    AND registrar_admission_is_live(q.status, q.admitted_until)
  FOR NO KEY UPDATE OF q
$$;

-- Leaves the queue (DELETE /queue/{id}): a place not yet registered, expired or sold out becomes
-- `left`; an admitted one frees its admission (the next tick admits the next place). The course's
-- left_total counts it, in the same transaction, for the workers that remember waiting places
-- (registrar_queue_views). Answers the place as it is after.
CREATE OR REPLACE FUNCTION registrar_queue_leave(p_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_course text;
BEGIN
  UPDATE queue_places SET status = 'left', updated_at = now()
  WHERE id = p_id AND status IN ('unverified', 'waiting', 'admitted')
  RETURNING course_id INTO v_course;
  IF FOUND THEN
    UPDATE queue_states SET left_total = left_total + 1 WHERE course_id = v_course;
  END IF;
  RETURN registrar_queue_place(p_id);
END
$$;

-- What a waiting place's answer depends on, per queued course, for the HTTP workers' memory of
-- waiting places (src/domain/queue-place-memory.ts): the admission pointer and rate (position,
-- ahead and estimate are arithmetic on them and the rank), whether the places are ordered,
-- whether the course is sold out or closed, the places that left or were sold out so far
-- (gone_total: a waiting place changes status only by admission, the pointer, or by these), and
-- the milliseconds from
-- now() to opensAt and closesAt (NULL: none), so that the worker measures them on its own clock.
-- One row per course with a queue; a few rows, read by key.
CREATE OR REPLACE FUNCTION registrar_queue_views() RETURNS TABLE (
  course_id text, passed bigint, admission_rate float8, ordered boolean, sold_out boolean, closed boolean,
  gone_total bigint, opens_in_ms float8, closes_in_ms float8
) LANGUAGE sql STABLE AS $$
  SELECT s.course_id, s.passed, s.admission_rate, s.ordered_at IS NOT NULL, s.sold_out_at IS NOT NULL,
    s.closed_at IS NOT NULL, s.left_total + s.sold_out_total,
    extract(epoch FROM c.opens_at - now())::float8 * 1000, extract(epoch FROM c.closes_at - now())::float8 * 1000
  FROM queue_states s JOIN courses c ON c.id = s.course_id
  WHERE c.queue_order IS NOT NULL
$$;
