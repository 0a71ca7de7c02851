-- Drops the registration functions' signatures that src/db/functions does not define:
-- registrar_register_batch and registrar_import_batch take the attempt's mode (p_lock_first) and
-- make one attempt per call; registrar_register_batch_in has no caller.
DROP FUNCTION IF EXISTS registrar_register_batch(text[], text[], text[], text[], text[], bytea[], bytea[], bytea[]);
DROP FUNCTION IF EXISTS registrar_register_batch_in(boolean, text[], text[], text[], text[], text[], bytea[], bytea[], bytea[]);
DROP FUNCTION IF EXISTS registrar_import_batch(uuid, integer[], text[], text[], text[], text[], text[], jsonb, integer, integer);
