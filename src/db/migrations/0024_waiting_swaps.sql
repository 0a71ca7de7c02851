-- Swaps that wait (SPEC "Terms: rules across courses"; docs/design.md, "Swaps"): the new
-- registration waits on its course's waitlist marked with the registration it replaces; when it
-- is promoted, the old one is cancelled in the same transaction (src/db/functions/swap.sql).
-- The mark stays after the swap completed, as the record of what the registration replaced.
ALTER TABLE registrations ADD COLUMN swap_from uuid REFERENCES registrations (id);
-- A registration's waiting swaps, found by what they replace.
CREATE INDEX registrations_swap_from ON registrations (swap_from) WHERE swap_from IS NOT NULL;

DROP FUNCTION IF EXISTS registrar_swap(uuid, text, text, text);
