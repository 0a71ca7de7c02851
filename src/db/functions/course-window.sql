-- The opening window: a course takes registrations from opens_at (included) until closes_at
-- (excluded), by the database's clock (now(): the transaction's start); a NULL bound leaves that
-- side open. A single-expression LANGUAGE sql function, so the planner inlines it at each use.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

CREATE OR REPLACE FUNCTION registrar_course_is_open(p_opens_at timestamptz, p_closes_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT (p_opens_at IS NULL OR now() >= p_opens_at) AND (p_closes_at IS NULL OR now() < p_closes_at)
$$;
