-- The waiting room at closesAt (issue 14): every place still waiting, unverified or admitted and
-- not registered ends as `closed`, once, decided by the admission tick (registrar_admit,
-- queue-admit.sql) and told by its page and an email of kind `closed`.
ALTER TYPE queue_place_status ADD VALUE IF NOT EXISTS 'closed';

-- When the tick closed the course's queue (NULL: not yet), and how many places it closed: the
-- figures count them from here, as they count the expired from expired_total.
ALTER TABLE queue_states
  ADD COLUMN closed_at timestamptz,
  ADD COLUMN closed_total bigint NOT NULL DEFAULT 0;

ALTER TABLE queue_events DROP CONSTRAINT queue_events_kind_check;
ALTER TABLE queue_events ADD CONSTRAINT queue_events_kind_check CHECK (kind IN ('joined', 'link', 'admitted', 'sold-out', 'closed'));

-- Its answer gains a column (closed): CREATE OR REPLACE cannot change a function's columns.
DROP FUNCTION IF EXISTS registrar_queue_figures();
