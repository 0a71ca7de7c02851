-- Waitlist offers (SPEC.md, "Waitlist offers"; docs/design.md, "Waitlist offers"): a course with
-- promotion 'offer' holds a freed seat for waitlist position 1 until a deadline instead of
-- enrolling them. The held seats are counted on the course (offered), so a seat is never both
-- free and held: enrolled + offered <= capacity. An offered registration stays 'waitlisted'
-- with its deadline in offer_until until it is accepted (enrolled), declined or expired
-- (cancelled); the functions are in src/db/functions/offers.sql.

ALTER TABLE courses
  ADD COLUMN promotion text NOT NULL DEFAULT 'automatic' CHECK (promotion IN ('automatic', 'offer')),
  -- How long an offer holds its seat; fractions of an hour allowed (tests use seconds).
  ADD COLUMN offer_hours double precision NOT NULL DEFAULT 48 CHECK (offer_hours > 0 AND offer_hours <= 720),
  ADD COLUMN offered integer NOT NULL DEFAULT 0 CHECK (offered >= 0),
  ADD CONSTRAINT courses_held_within_capacity CHECK (enrolled + offered <= capacity);

-- Both set while an offer is open, both NULL otherwise.
ALTER TABLE registrations
  ADD COLUMN offered_at timestamptz,
  ADD COLUMN offer_until timestamptz,
  ADD CONSTRAINT registrations_offer_while_waitlisted CHECK (
    (offer_until IS NULL AND offered_at IS NULL) OR (status = 'waitlisted' AND offer_until IS NOT NULL AND offered_at IS NOT NULL));
-- The open offers by deadline: what the job worker's tick settles.
CREATE INDEX registrations_open_offers ON registrations (offer_until) WHERE offer_until IS NOT NULL;

ALTER TABLE registration_events DROP CONSTRAINT registration_events_kind_check;
ALTER TABLE registration_events ADD CONSTRAINT registration_events_kind_check
  CHECK (kind IN ('enrolled', 'waitlisted', 'promoted', 'cancelled', 'reminder', 'offered', 'accepted', 'declined', 'expired'));
-- An 'offered' event's deadline, as the email about it states it (the same on every retry).
ALTER TABLE registration_events ADD COLUMN offer_until timestamptz;
