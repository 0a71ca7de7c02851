-- Duplicates: a student (course, email key) has at most one registration that is not cancelled.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- The student's active registration in the course, if any: the one probe both the registration
-- batch (register-batch.sql) and the read before it (findActiveRegistrations in
-- src/db/queries/registrations.queries.ts) make. LANGUAGE sql, STABLE, not STRICT, without SET:
-- PostgreSQL inlines it into the calling query, so it plans as the index probe written out.
-- LIMIT keeps it a probe: a plan cached while the table was small must not become a scan of the
-- whole index once it is large.
CREATE OR REPLACE FUNCTION registrar_active_registration(p_course_id text, p_email_key text)
RETURNS SETOF registrations LANGUAGE sql STABLE AS $$
  SELECT * FROM registrations r
  WHERE r.course_id = p_course_id AND r.email_key = p_email_key AND r.status <> 'cancelled'
  LIMIT 1
$$;
