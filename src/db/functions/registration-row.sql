-- A registration as the application reads it (RegistrationRow), with its computed waitlist position.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- A registration as the application reads it (RegistrationRow), with its waitlist position:
-- the number of waitlisted registrations of the course that arrived no later than this one.
-- Computed, never stored, so positions are 1..n without gaps by construction (invariant 3). A
-- registration holding an offer keeps its place, so the others' positions count it. offer_until:
-- the deadline of its open offer, or NULL.
CREATE OR REPLACE FUNCTION registrar_registration_row(r registrations, p_position bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'id', r.id, 'course_id', r.course_id, 'name', r.name, 'email', r.email,
    'status', r.status, 'waitlist_position', p_position, 'created_at', r.created_at,
    'offer_until', r.offer_until)
$$;

CREATE OR REPLACE FUNCTION registrar_registration_row(r registrations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT registrar_registration_row(r, CASE WHEN r.status = 'waitlisted' THEN (
    SELECT count(*) FROM registrations w
    WHERE w.course_id = r.course_id AND w.status = 'waitlisted' AND w.seq <= r.seq) END)
$$;
