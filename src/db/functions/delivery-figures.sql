-- Delivery figures kept in the transaction of the rows they count: the statement-level trigger
-- function behind the triggers on email_deliveries and webhook_deliveries (created by migration
-- 0012_retention.sql), and the fold of pending changes into the totals.
-- Re-applied at each start by src/db/migrate.ts (CREATE OR REPLACE); this file is the live definition.

-- One function for both logs and all three operations. The figure is the table's prefix and the
-- row's status ('emails_' || 'sent', 'webhooks_' || 'pending'); an update that leaves a status
-- as it was (a webhook retry) adds nothing. Transition tables cannot go with a column list or
-- several events, hence three triggers per table. INSERT ... ON CONFLICT DO UPDATE fires the
-- insert trigger for the rows it inserted and the update trigger for the rows it updated.
CREATE OR REPLACE FUNCTION registrar_count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_prefix text := CASE TG_TABLE_NAME WHEN 'email_deliveries' THEN 'emails_' ELSE 'webhooks_' END;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO delivery_figure_changes (figure, change)
    SELECT v_prefix || status, count(*) FROM new_rows GROUP BY status;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO delivery_figure_changes (figure, change)
    SELECT v_prefix || status, -count(*) FROM old_rows GROUP BY status;
  ELSE
    INSERT INTO delivery_figure_changes (figure, change)
    SELECT figure, sum(change) FROM (
      SELECT v_prefix || status AS figure, 1 AS change FROM new_rows
      UNION ALL
      SELECT v_prefix || status, -1 FROM old_rows) c
    GROUP BY figure HAVING sum(change) <> 0;
  END IF;
  RETURN NULL;
END
$$;

-- Moves the pending changes into the totals; answers how many change rows it folded. One fold at
-- a time (another instance's job worker may be folding): the others skip, answering 0.
CREATE OR REPLACE FUNCTION registrar_fold_delivery_figures() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_folded integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(7211303) THEN
    RETURN 0;
  END IF;
  WITH folded AS (
    DELETE FROM delivery_figure_changes RETURNING figure, change
  ), sums AS (
    SELECT figure, sum(change) AS change, count(*) AS n FROM folded GROUP BY figure
  ), updated AS (
    UPDATE delivery_figures f SET count = f.count + s.change FROM sums s WHERE f.figure = s.figure RETURNING s.n
  )
  SELECT coalesce(sum(n), 0) INTO v_folded FROM updated;
  RETURN v_folded;
END
$$;
