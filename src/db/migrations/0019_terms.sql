-- Terms (SPEC.md, "Terms: rules across courses"): a course may belong to a term, and a student
-- (email key) holds at most the term's max_courses_per_student active registrations in it. The
-- count lives in term_students, one row per (term, student), changed in the same statement as
-- the registrations it counts; the row is the lock that serializes one student's registrations
-- across the term's courses (docs/design.md, "Terms"). History: every registration event says
-- who made the change and why.

CREATE TABLE terms (
  id                      text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
  title                   text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  -- NULL: no limit.
  max_courses_per_student integer CHECK (max_courses_per_student > 0),
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE courses ADD COLUMN term_id text REFERENCES terms (id);
CREATE INDEX courses_by_term ON courses (term_id) WHERE term_id IS NOT NULL;

-- Active (enrolled or waitlisted) registrations of a student in a term's courses. Kept for every
-- term, with a limit or without, so a limit set later counts what is there.
CREATE TABLE term_students (
  term_id   text NOT NULL REFERENCES terms (id),
  email_key text NOT NULL,
  active    integer NOT NULL CHECK (active >= 0),
  PRIMARY KEY (term_id, email_key)
);

-- Who made each change (student, admin, import, system) and why, in words an admin reads.
-- Reminders are events too (an email) but no change: their actor and reason stay NULL.
ALTER TABLE registration_events
  ADD COLUMN actor text CHECK (actor IN ('student', 'admin', 'import', 'system')),
  ADD COLUMN reason text;
-- Changes recorded before actors were kept: a promotion is the system's; for the rest the
-- record does not say whether a student, an admin or an import made them.
UPDATE registration_events SET actor = CASE kind WHEN 'promoted' THEN 'system' ELSE 'student' END,
  reason = 'recorded before the history kept who and why'
WHERE kind <> 'reminder';
ALTER TABLE registration_events ADD CONSTRAINT registration_events_change_has_actor CHECK (kind = 'reminder' OR (actor IS NOT NULL AND reason IS NOT NULL));
-- A course's history, newest first, paged by event id.
CREATE INDEX registration_events_course_history ON registration_events (course_id, id) WHERE kind <> 'reminder';

-- The functions that record events take the actor and the reason (src/db/functions/).
DROP FUNCTION IF EXISTS registrar_record_events(uuid[], text[], text[], integer[], text[]);
DROP FUNCTION IF EXISTS registrar_promote_waitlisted(text);
DROP FUNCTION IF EXISTS registrar_cancel(uuid);
DROP FUNCTION IF EXISTS registrar_register_batch(boolean, text[], text[], text[], text[], text[], bytea[], bytea[], bytea[], bytea[]);
