-- The waiting room's emails (joined, the link sent again, admitted, sold-out), a token per email,
-- and its webhook events (queue.joined, queue.admitted, queue.sold-out).
-- docs/design.md, "The waiting room".
--
-- A queue token is stored only as its SHA-256, so an email cannot carry the token of the join
-- answer: each email gets a token of its own. queue_tokens holds every token of a place (the
-- join answer's and each email's), each with the SHA-256 of the admission derived from it
-- (src/security/tokens.ts, admissionTokenFor), so whichever token the student holds sees the
-- place and gives a working admission. Only a token made for an email (emailed) verifies a place
-- of a course with verifyEmail: the join answer's would prove nothing about the address.
--
-- queue_events has one row per email, its ids drawn from registration_events' sequence: one id
-- space, so email_deliveries, the mailbox and webhook_deliveries key every email and delivery,
-- of either kind, by its event id (their foreign keys to registration_events go), and the
-- send_email and deliver_webhook jobs deliver both once.

-- Neither table has a foreign key to queue_places: a sold-out tick writes a token and an event
-- for each of up to 100,000 places in one transaction, and the key checks (a probe and a row
-- lock per row, on rows that transaction has just updated) took more than half its time
-- (100,000 emails: 5.7-6.8 s with them, 2.4-2.8 s without, on this 2-core machine). Both are
-- written only by registrar_queue_email and the join, with ids read from queue_places in the
-- same transaction, and places are never deleted.
CREATE TABLE queue_tokens (
  token_hash     bytea PRIMARY KEY,
  place_id       uuid NOT NULL,
  -- The SHA-256 of the admission token derived from this token: registers only while the place
  -- is admitted and before admitted_until (registrar_lock_admission).
  admission_hash bytea NOT NULL UNIQUE,
  emailed        boolean NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO queue_tokens (token_hash, place_id, admission_hash, emailed, created_at)
SELECT token_hash, id, admission_hash, false, joined_at FROM queue_places;

ALTER TABLE queue_places
  DROP COLUMN token_hash,
  DROP COLUMN admission_hash,
  -- When the link was last emailed again on a second join (at most once per 10 minutes); NULL: never.
  ADD COLUMN link_sent_at timestamptz;

CREATE TABLE queue_events (
  id         bigint PRIMARY KEY DEFAULT nextval('registration_events_id_seq'),
  place_id   uuid NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('joined', 'link', 'admitted', 'sold-out')),
  -- The place was unverified when the email was written: its link confirms the address.
  verifies   boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE email_deliveries DROP CONSTRAINT email_deliveries_event_id_fkey;
ALTER TABLE mailbox DROP CONSTRAINT mailbox_event_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_id_fkey;
