-- Courses and registrations: the invariants of SPEC.md live here as constraints and as the
-- only functions that change seats. Each change calls registrar_record_event (0002), which
-- records the event and queues its email and webhooks in the same transaction.
--
-- Concurrency design: every change to a course's seats (register, cancel, promote, capacity
-- change) first locks that course's row (FOR UPDATE) and then reads and writes its
-- registrations. Changes to one course are therefore serialized, changes to different courses
-- run in parallel, and lock order is always course -> registrations, so they cannot deadlock.
-- The CHECK constraints and the partial unique index are the backstop: if a code path ever
-- forgot the lock, the database would refuse the write instead of overbooking.

CREATE TABLE courses (
  id                text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
  title             text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  capacity          integer NOT NULL CHECK (capacity >= 0),
  waitlist_capacity integer NOT NULL DEFAULT 0 CHECK (waitlist_capacity >= 0),
  -- Counters kept in the same transaction as the registrations they count (invariant 1).
  enrolled          integer NOT NULL DEFAULT 0,
  waitlisted        integer NOT NULL DEFAULT 0,
  opens_at          timestamptz,
  closes_at         timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT courses_enrolled_within_capacity CHECK (enrolled BETWEEN 0 AND capacity),
  CONSTRAINT courses_waitlisted_within_capacity CHECK (waitlisted BETWEEN 0 AND waitlist_capacity),
  CONSTRAINT courses_window_in_order CHECK (opens_at IS NULL OR closes_at IS NULL OR opens_at < closes_at)
);

-- A registration's status: 'enrolled' or 'waitlisted' while active, then 'cancelled' for good.
-- 'waitlisted' -> 'enrolled' is a promotion; nothing ever returns from 'cancelled'.
CREATE TYPE registration_status AS ENUM ('enrolled', 'waitlisted', 'cancelled');

CREATE TABLE registrations (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Arrival order, taken under the course lock: first come, first served for the waitlist.
  seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  course_id         text NOT NULL REFERENCES courses (id),
  name              text NOT NULL,
  email             text NOT NULL,
  -- lower(trim(email)): what "the same student" means (invariant 2).
  email_key         text NOT NULL,
  status            registration_status NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Invariant 2: at most one active registration per (course, email).
CREATE UNIQUE INDEX registrations_one_active_per_email
  ON registrations (course_id, email_key) WHERE status <> 'cancelled';
-- Invariant 3: the waitlist, in arrival order; position = rank in this index.
CREATE INDEX registrations_waitlist ON registrations (course_id, seq) WHERE status = 'waitlisted';
CREATE INDEX registrations_by_course ON registrations (course_id, seq);

-- Idempotency-Key replays. Only a hash of the key is stored; the manage token of the original
-- answer is kept sealed with a key derived from the Idempotency-Key itself, so only a client
-- holding that key can get the token back (the database alone cannot).
CREATE TABLE idempotency_keys (
  key_hash      bytea PRIMARY KEY,
  request_hash  bytea NOT NULL,
  status_code   integer,
  registration  jsonb,
  sealed_token  bytea,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- A registration as the application reads it (RegistrationRow), with its waitlist position:
-- the number of waitlisted registrations of the course that arrived no later than this one.
-- Computed, never stored, so positions are 1..n without gaps by construction (invariant 3).
CREATE FUNCTION registrar_registration_row(r registrations, p_position bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'id', r.id, 'course_id', r.course_id, 'name', r.name, 'email', r.email,
    'status', r.status, 'waitlist_position', p_position, 'created_at', r.created_at)
$$;

CREATE FUNCTION registrar_registration_row(r registrations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT registrar_registration_row(r, CASE WHEN r.status = 'waitlisted' THEN (
    SELECT count(*) FROM registrations w
    WHERE w.course_id = r.course_id AND w.status = 'waitlisted' AND w.seq <= r.seq) END)
$$;

-- Fills free seats from the waitlist, first come first served. The caller holds the course lock.
CREATE FUNCTION registrar_promote_waitlisted(p_course_id text) RETURNS integer
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

-- Registers a student in one statement, so the course lock is held for one round trip only.
-- Returns {"outcome": ...}: 'created' | 'existing' | 'replay' | 'key-reused' | 'key-in-progress' |
-- 'course-not-found' | 'registration-closed' | 'course-full'.
CREATE FUNCTION registrar_register(
  p_course_id text, p_name text, p_email text, p_email_key text, p_manage_token text,
  p_key_hash bytea, p_request_hash bytea, p_sealed_token bytea
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_key idempotency_keys;
  v_course courses;
  v_registration registrations;
  v_status registration_status;
  v_position integer;
  v_result jsonb;
  v_code integer;
BEGIN
  IF p_key_hash IS NOT NULL THEN
    -- The key's lock lives as long as the transaction that handles it: if another request with
    -- this key is still being handled, answer 409 at once (draft-ietf-httpapi-idempotency-key-
    -- header) instead of waiting. Once that one has committed, its stored answer is replayed; an
    -- attempt that ended in an error deleted its key row, so a retry proceeds as a fresh request.
    IF NOT pg_try_advisory_xact_lock(('x' || encode(substr(p_key_hash, 1, 8), 'hex'))::bit(64)::bigint) THEN
      RETURN jsonb_build_object('outcome', 'key-in-progress');
    END IF;
    INSERT INTO idempotency_keys (key_hash, request_hash) VALUES (p_key_hash, p_request_hash)
    ON CONFLICT (key_hash) DO NOTHING;
    IF NOT FOUND THEN
      SELECT * INTO STRICT v_key FROM idempotency_keys WHERE key_hash = p_key_hash;
      IF v_key.request_hash <> p_request_hash THEN
        RETURN jsonb_build_object('outcome', 'key-reused');
      END IF;
      RETURN jsonb_build_object('outcome', 'replay', 'statusCode', v_key.status_code,
        'registration', v_key.registration, 'sealedToken', encode(v_key.sealed_token, 'base64'));
    END IF;
  END IF;

  SELECT * INTO v_course FROM courses WHERE id = p_course_id FOR UPDATE;
  IF NOT FOUND THEN
    v_result := jsonb_build_object('outcome', 'course-not-found');
  ELSE
    -- Under the course lock no other transaction can add or cancel a registration of this
    -- course, so this read and the insert below cannot race (the unique index backs it up).
    SELECT * INTO v_registration FROM registrations
    WHERE course_id = p_course_id AND email_key = p_email_key AND status <> 'cancelled';
    IF FOUND THEN
      v_result := jsonb_build_object('outcome', 'existing', 'registration', registrar_registration_row(v_registration));
      v_code := 200;
    ELSIF (v_course.opens_at IS NOT NULL AND now() < v_course.opens_at)
       OR (v_course.closes_at IS NOT NULL AND now() >= v_course.closes_at) THEN
      v_result := jsonb_build_object('outcome', 'registration-closed');
    ELSE
      IF v_course.enrolled < v_course.capacity THEN
        v_status := 'enrolled';
        UPDATE courses SET enrolled = enrolled + 1, updated_at = now() WHERE id = p_course_id;
      ELSIF v_course.waitlisted < v_course.waitlist_capacity THEN
        v_status := 'waitlisted';
        v_position := v_course.waitlisted + 1;
        UPDATE courses SET waitlisted = waitlisted + 1, updated_at = now() WHERE id = p_course_id;
      END IF;
      IF v_status IS NULL THEN
        v_result := jsonb_build_object('outcome', 'course-full');
      ELSE
        INSERT INTO registrations (course_id, name, email, email_key, status)
        VALUES (p_course_id, p_name, p_email, p_email_key, v_status)
        RETURNING * INTO v_registration;
        PERFORM registrar_record_event(v_registration, v_status::text, v_position, p_manage_token);
        v_result := jsonb_build_object('outcome', 'created', 'registration', registrar_registration_row(v_registration, v_position));
        v_code := 201;
      END IF;
    END IF;
  END IF;

  IF p_key_hash IS NOT NULL THEN
    IF v_code IS NULL THEN
      -- Error answers are not the key's result: a retry may succeed once a seat frees up.
      DELETE FROM idempotency_keys WHERE key_hash = p_key_hash;
    ELSE
      UPDATE idempotency_keys
      SET status_code = v_code, registration = v_result -> 'registration',
          sealed_token = CASE WHEN v_code = 201 THEN p_sealed_token END
      WHERE key_hash = p_key_hash;
    END IF;
  END IF;
  RETURN v_result;
END
$$;

-- Cancels a registration; a freed seat goes to waitlist position 1 in the same transaction.
-- Returns {"outcome": 'cancelled' | 'already-cancelled' | 'not-found', "registration": ...}.
CREATE FUNCTION registrar_cancel(p_registration_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_course_id text;
  v_before registrations;
  v_after registrations;
BEGIN
  SELECT course_id INTO v_course_id FROM registrations WHERE id = p_registration_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not-found');
  END IF;
  PERFORM 1 FROM courses WHERE id = v_course_id FOR UPDATE;
  -- Read the status only under the course lock: it cannot change until we commit.
  SELECT * INTO STRICT v_before FROM registrations WHERE id = p_registration_id;
  IF v_before.status = 'cancelled' THEN
    RETURN jsonb_build_object('outcome', 'already-cancelled', 'registration', registrar_registration_row(v_before));
  END IF;
  UPDATE registrations SET status = 'cancelled', updated_at = now()
  WHERE id = p_registration_id RETURNING * INTO v_after;
  PERFORM registrar_record_event(v_after, 'cancelled', NULL, NULL);
  IF v_before.status = 'enrolled' THEN
    UPDATE courses SET enrolled = enrolled - 1, updated_at = now() WHERE id = v_course_id;
    PERFORM registrar_promote_waitlisted(v_course_id);
  ELSE
    UPDATE courses SET waitlisted = waitlisted - 1, updated_at = now() WHERE id = v_course_id;
  END IF;
  RETURN jsonb_build_object('outcome', 'cancelled', 'registration', registrar_registration_row(v_after));
END
$$;
