-- Registering settles the due offers of the courses it locks, and every transaction locks the
-- term counts it changes in (term, email key) order (docs/design.md, "Terms" and "Waitlist
-- offers"): registrar_settle_offers takes the moment it settles at, registrar_cancel and
-- registrar_register_batch whether their caller settled already (src/db/functions/).
DROP FUNCTION IF EXISTS registrar_settle_offers(text);
DROP FUNCTION IF EXISTS registrar_cancel(uuid, text);
DROP FUNCTION IF EXISTS registrar_register_batch(boolean, text[], text[], text[], text[], text[], bytea[], bytea[], bytea[], bytea[], text);
