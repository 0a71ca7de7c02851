-- The waiting room's figures (registrar_queue_figures, src/db/functions/queue-figures.sql) count
-- the ranked places that left or were sold out through this index, so a read costs what those
-- places number, not what the queue holds (the ranked waiting places are arithmetic on the state
-- row). Only rows in these two statuses are in it: joins and admissions do not write it.
CREATE INDEX queue_places_ranked_gone ON queue_places (course_id, status)
  WHERE status IN ('left', 'sold-out') AND rank IS NOT NULL;
