-- A database migrated at a commit between two signatures of a function can hold both: the old
-- one, with fewer parameters, is not replaced by CREATE OR REPLACE of the new one, and a call
-- that fits both (registrar_swap's registrar_cancel(id, actor, true)) fails as "not unique".
-- registrar_cancel(uuid, text, boolean) is one such; any registrar_* name with more than one
-- overload has every overload dropped here, since src/db/migrate.ts re-creates each current
-- definition from src/db/functions in this same transaction (every registrar_* function lives
-- there). Trigger functions are never overloaded and are kept (their triggers depend on them).
DROP FUNCTION IF EXISTS registrar_cancel(uuid, text, boolean);
DO $$
DECLARE
  v_function regprocedure;
BEGIN
  FOR v_function IN
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = current_schema() AND p.proname LIKE 'registrar\_%' AND p.prorettype <> 'trigger'::regtype
      AND p.proname IN (SELECT proname FROM pg_proc JOIN pg_namespace ns ON ns.oid = pronamespace
        WHERE ns.nspname = current_schema() GROUP BY proname HAVING count(*) > 1)
  LOOP
    EXECUTE format('DROP FUNCTION %s', v_function);
  END LOOP;
END
$$;
