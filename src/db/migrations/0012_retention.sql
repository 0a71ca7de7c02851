-- Retention (RETENTION_DAYS, src/domain/retention.service.ts) and delivery figures that cost the same
-- whatever the size of the delivery logs.
--
-- 1. Indexes that let the retention job find the oldest rows of each log from the oldest end,
--    in small batches, without reading the rows it keeps.
-- 2. Delivery figures (emails sent and failed, webhooks delivered, failed and pending) kept in
--    the same transaction as the rows they count: statement-level triggers add one change row
--    per figure per statement to delivery_figure_changes, an insert-only table, so concurrent
--    writers never wait on one another's counter row (a registration batch and an email job
--    would otherwise queue on a single hot row until commit). The job worker folds the changes
--    into delivery_figures about once a second. A figure is its total plus its pending changes:
--    exact in any snapshot (the fold deletes changes and adds them to the total in one
--    transaction), and read from a handful of rows instead of counting the logs.
-- 3. The job queue's figures per task, counted once a second by the job worker and kept in
--    queue_figures, so the dashboards and /admin/jobs of every worker read a row per task instead
--    of each counting the whole queue.

CREATE INDEX mailbox_by_age ON mailbox (created_at);
CREATE INDEX email_deliveries_by_age ON email_deliveries (updated_at);
-- A pending delivery is never removed: its job still needs it.
CREATE INDEX webhook_deliveries_finished_by_age ON webhook_deliveries (updated_at) WHERE status <> 'pending';
-- Cancelled is final: the manage tokens of a registration cancelled long ago are removed.
CREATE INDEX registrations_cancelled_by_age ON registrations (updated_at, id) WHERE status = 'cancelled';

CREATE TABLE queue_figures (
  task                  text PRIMARY KEY,
  queued                integer NOT NULL,
  running               integer NOT NULL,
  retrying              integer NOT NULL,
  dead                  integer NOT NULL,
  -- As of taken_at.
  oldest_queued_seconds float8,
  taken_at              timestamptz NOT NULL
);

CREATE TABLE delivery_figures (
  figure  text PRIMARY KEY CHECK (figure IN ('emails_sent', 'emails_failed', 'webhooks_delivered', 'webhooks_failed', 'webhooks_pending')),
  count   bigint NOT NULL
);

-- Written by the triggers below, emptied by registrar_fold_delivery_figures. No index: it is
-- only appended to and read whole, and it holds about a second of changes.
CREATE TABLE delivery_figure_changes (
  figure  text NOT NULL,
  change  bigint NOT NULL
);
-- Churns constantly: vacuum it after a thousand dead rows, not after 20% of a tiny table.
ALTER TABLE delivery_figure_changes SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- A placeholder, so that the triggers below can be created; its body is
-- src/db/functions/delivery-figures.sql, applied at the end of the same start, before any writer.
CREATE FUNCTION registrar_count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RETURN NULL;
END
$$;

CREATE TRIGGER email_deliveries_count_inserts AFTER INSERT ON email_deliveries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION registrar_count_deliveries();
CREATE TRIGGER email_deliveries_count_updates AFTER UPDATE ON email_deliveries
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION registrar_count_deliveries();
CREATE TRIGGER email_deliveries_count_deletes AFTER DELETE ON email_deliveries
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION registrar_count_deliveries();
CREATE TRIGGER webhook_deliveries_count_inserts AFTER INSERT ON webhook_deliveries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION registrar_count_deliveries();
CREATE TRIGGER webhook_deliveries_count_updates AFTER UPDATE ON webhook_deliveries
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION registrar_count_deliveries();
CREATE TRIGGER webhook_deliveries_count_deletes AFTER DELETE ON webhook_deliveries
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION registrar_count_deliveries();

-- The rows already there, counted once. CREATE TRIGGER holds a lock that keeps writers out until
-- this migration commits, so nothing is written between these counts and the triggers.
INSERT INTO delivery_figures (figure, count)
SELECT f, 0 FROM unnest(ARRAY['emails_sent', 'emails_failed', 'webhooks_delivered', 'webhooks_failed', 'webhooks_pending']) f;
UPDATE delivery_figures f SET count = c.n
FROM (SELECT 'emails_' || status AS figure, count(*) AS n FROM email_deliveries GROUP BY status
      UNION ALL
      SELECT 'webhooks_' || status, count(*) FROM webhook_deliveries GROUP BY status) c
WHERE f.figure = c.figure;
