-- The reminder a duplicate registration sends instead of showing what was stored.
--
-- POST /register for an email that already holds an active registration answers 200 without
-- anything stored (the caller may not be that student); the student hears of it by email: a
-- registration event of kind 'reminder', with a fresh manage token, through the one event path
-- of 0007 (event, token hash, email job in the same transaction). registrar_webhook_event_type
-- has no type for it, so it makes no webhook delivery: nothing about the registration changed.
--
-- At most one reminder per registration per 10 minutes, decided here so it holds across workers
-- and instances: registrations.reminded_at is set by a conditional UPDATE. Concurrent reminders
-- for one registration queue on its row lock; under READ COMMITTED the later ones re-check the
-- condition against the committed row (reminded_at just set) and update nothing.
-- registrar_remind: src/db/functions/remind.sql.

ALTER TABLE registration_events DROP CONSTRAINT registration_events_kind_check;
ALTER TABLE registration_events ADD CONSTRAINT registration_events_kind_check
  CHECK (kind IN ('enrolled', 'waitlisted', 'promoted', 'cancelled', 'reminder'));

-- When this registration's last reminder was committed; NULL: none yet.
ALTER TABLE registrations ADD COLUMN reminded_at timestamptz;
