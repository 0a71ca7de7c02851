-- Registering settles the due offers of the courses it locks, and every transaction locks the
-- term counts it changes in (term, email key) order (docs/design.md, "Terms" and "Waitlist
-- offers"): registrar_settle_offers takes the moment it settles at, registrar_cancel and
-- registrar_register_batch whether their caller settled already (src/db/functions/).
DROP FUNCTION IF EXISTS registrar_settle_offers(text);
DROP FUNCTION IF EXISTS registrar_cancel(uuid, text);
DROP FUNCTION IF EXISTS registrar_register_batch(boolean, text[], text[], text[], text[], text[], bytea[], bytea[], bytea[], bytea[], text);

-- A course's own changes in its history (SPEC "History": capacity changed): who changed the
-- capacity and from what to what. Not registration events: they change no registration (they
-- send no email, have no manage token, and invariant 10 counts a registration's entries).
-- Their ids come from the registration events' sequence, so a course's history is one order of
-- both, paged by one cursor (docs/design.md, "History").
CREATE TABLE course_events (
  id         bigint PRIMARY KEY DEFAULT nextval('registration_events_id_seq'),
  course_id  text NOT NULL REFERENCES courses (id),
  kind       text NOT NULL CHECK (kind IN ('capacity-changed')),
  actor      text NOT NULL CHECK (actor IN ('student', 'admin', 'import', 'system')),
  reason     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX course_events_history ON course_events (course_id, id);
