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
-- The functions (registration-row, promote-waitlisted, register-batch, cancel) are in
-- src/db/functions/, re-applied at each start after the migrations.

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
