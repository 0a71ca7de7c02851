-- The waiting room (SPEC.md, "Fair admission"): a course's queue settings, one place per
-- (course, email key), and one queue state row per queued course (the seed, whether the places
-- are ordered, the rank counter, the admission pointer and the pacing samples). How ranks, the
-- pointer and the pacing work, and why they hold under concurrency: docs/design.md, "The waiting room".

-- queue_order NULL: the course has no queue.
ALTER TABLE courses
  ADD COLUMN queue_order text CHECK (queue_order IN ('random', 'arrival')),
  ADD COLUMN queue_join_from timestamptz,
  ADD COLUMN queue_admission_seconds integer NOT NULL DEFAULT 300 CHECK (queue_admission_seconds BETWEEN 1 AND 86400),
  ADD COLUMN queue_verify_email boolean NOT NULL DEFAULT false;

CREATE TYPE queue_place_status AS ENUM ('unverified', 'waiting', 'admitted', 'registered', 'expired', 'sold-out', 'left');

CREATE TABLE queue_states (
  course_id          text PRIMARY KEY REFERENCES courses (id),
  -- The random order's seed: its SHA-256 is shown from the start, the seed once ordered.
  seed               bytea NOT NULL CHECK (length(seed) = 32),
  ordered_at         timestamptz,
  -- The highest rank given (ranks are 1..ranked, one per place, without gaps).
  ranked             bigint NOT NULL DEFAULT 0,
  -- The admission pointer: every place ranked up to it was admitted or had left.
  passed             bigint NOT NULL DEFAULT 0,
  admitted_total     bigint NOT NULL DEFAULT 0,
  expired_total      bigint NOT NULL DEFAULT 0,
  registered_total   bigint NOT NULL DEFAULT 0,
  sold_out_at        timestamptz,
  -- One sample per admission tick over the last minute: when, admitted, registered since the
  -- tick before, admitted and not yet registered after it.
  sample_at          timestamptz[] NOT NULL DEFAULT '{}',
  sample_admitted    integer[] NOT NULL DEFAULT '{}',
  sample_registered  integer[] NOT NULL DEFAULT '{}',
  sample_outstanding integer[] NOT NULL DEFAULT '{}',
  -- Admissions per second over the last minute: the estimates' rate.
  admission_rate     float8 NOT NULL DEFAULT 0,
  CONSTRAINT queue_states_pointer_within_ranks CHECK (passed BETWEEN 0 AND ranked)
);

CREATE TABLE queue_places (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  join_seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  course_id       text NOT NULL REFERENCES courses (id),
  name            text NOT NULL,
  email           text NOT NULL,
  email_key       text NOT NULL,
  status          queue_place_status NOT NULL DEFAULT 'waiting',
  -- NULL until the course's places are ordered (at opensAt), then 1..n.
  rank            bigint,
  token_hash      bytea NOT NULL,
  -- The SHA-256 of the admission token, which is derived from the queue token
  -- (src/security/tokens.ts): valid only while status is admitted and before admitted_until.
  admission_hash  bytea NOT NULL UNIQUE,
  joined_at       timestamptz NOT NULL DEFAULT now(),
  admitted_at     timestamptz,
  admitted_until  timestamptz,
  registered_at   timestamptz,
  registration_id uuid REFERENCES registrations (id),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT queue_places_one_per_email UNIQUE (course_id, email_key),
  CONSTRAINT queue_places_one_per_rank UNIQUE (course_id, rank),
  CONSTRAINT queue_places_admission_has_deadline CHECK ((admitted_at IS NULL) = (admitted_until IS NULL)),
  CONSTRAINT queue_places_admitted_first CHECK (status NOT IN ('admitted', 'registered', 'expired') OR admitted_at IS NOT NULL),
  CONSTRAINT queue_places_registered_has_registration CHECK ((status = 'registered') = (registration_id IS NOT NULL))
);

-- The admissions still open (expiry, the count of admitted and not yet registered).
CREATE INDEX queue_places_admitted ON queue_places (course_id, admitted_until) WHERE status = 'admitted';
-- The pacing's count of registrations through the queue.
CREATE INDEX queue_places_registered ON queue_places (course_id) WHERE status = 'registered';

-- registrar_register_batch takes each member's admission (src/db/functions/register-batch.sql).
DROP FUNCTION IF EXISTS registrar_register_batch(boolean, text[], text[], text[], text[], text[], bytea[], bytea[], bytea[]);
