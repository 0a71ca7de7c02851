-- Drops two batch-of-one wrappers absent from src/db/functions: registrations go through
-- registrar_register_batch, events through registrar_record_events.
DROP FUNCTION IF EXISTS registrar_register(text, text, text, text, text, bytea, bytea, bytea);
DROP FUNCTION IF EXISTS registrar_record_event(registrations, text, integer, text);
