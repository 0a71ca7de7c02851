-- The waiting room's figures per queued course, as the dashboard and /metrics show them.
-- docs/design.md, "The waiting room". Re-applied at each start by src/db/migrate.ts (CREATE OR
-- REPLACE); this file is the live definition.

-- One row per course with a queue: its places by status, the admissions and the admission rate.
-- Counted without a count over the waiting places once they are ordered. A ranked place is
-- waiting, admitted, registered, expired, left or sold-out (unverified places have no rank), so
-- the ranked waiting and sold-out places together are `ranked` less the others; the others are
-- counted through partial indexes of a few rows each (queue_places_admitted, _registered,
-- _ranked_gone) and the state row's expired_total. While the course is sold out no ranked place
-- waits (the tick sold out every waiting one and joins are refused), so the remainder is all
-- sold-out; after seats freed up again the ranked sold-out places are counted through
-- queue_places_ranked_gone. The unranked places (all of them before the ordering, afterwards
-- the unverified and those that left or were sold out unverified) are counted through the NULL
-- ranks of queue_places_one_per_rank: before opensAt this is a count over the places joined.
-- An admission past admitted_until counts as expired before the next tick records it, as a
-- place reads (registrar_queue_place_row). The places closed at closesAt are the state row's
-- closed_total (registrar_queue_close), the ranked ones among them taken from the remainder. One
-- statement: one snapshot for all the counts.
CREATE OR REPLACE FUNCTION registrar_queue_figures() RETURNS TABLE (
  course_id text, ordered_at timestamptz, sold_out_at timestamptz, admission_rate float8, admitted_total bigint,
  waiting bigint, unverified bigint, admitted bigint, registered bigint, expired bigint, sold_out bigint, left_queue bigint,
  closed bigint
) LANGUAGE sql STABLE AS $$
  SELECT s.course_id, s.ordered_at, s.sold_out_at, s.admission_rate, s.admitted_total,
    r.waiting + u.waiting, u.unverified, a.open, g.registered, s.expired_total + a.lapsed,
    r.sold_out + u.sold_out, gone.left_queue + u.left_queue, s.closed_total
  FROM courses c
  JOIN queue_states s ON s.course_id = c.id
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE registrar_admission_is_live(q.status, q.admitted_until)) AS open,
      count(*) FILTER (WHERE NOT registrar_admission_is_live(q.status, q.admitted_until)) AS lapsed
    FROM queue_places q WHERE q.course_id = c.id AND q.status = 'admitted'
  ) a
  CROSS JOIN LATERAL (
    SELECT count(*) AS registered FROM queue_places q WHERE q.course_id = c.id AND q.status = 'registered'
  ) g
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE q.status = 'left') AS left_queue, count(*) FILTER (WHERE q.status = 'sold-out') AS sold_out
    FROM queue_places q WHERE q.course_id = c.id AND q.status IN ('left', 'sold-out') AND q.rank IS NOT NULL
      -- While sold out the sold-out places are the remainder: not counted.
      AND (q.status = 'left' OR s.sold_out_at IS NULL)
  ) gone
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE q.status = 'waiting') AS waiting, count(*) FILTER (WHERE q.status = 'unverified') AS unverified,
           count(*) FILTER (WHERE q.status = 'sold-out') AS sold_out, count(*) FILTER (WHERE q.status = 'left') AS left_queue,
           -- As text: the enum's value is added in the transaction that creates this function.
           count(*) FILTER (WHERE q.status::text = 'closed') AS closed
    FROM queue_places q WHERE q.course_id = c.id AND q.rank IS NULL
  ) u
  CROSS JOIN LATERAL (
    SELECT s.ranked - (a.open + a.lapsed) - g.registered - s.expired_total - gone.left_queue - (s.closed_total - u.closed) AS rest
  ) rest
  CROSS JOIN LATERAL (
    SELECT CASE WHEN s.sold_out_at IS NULL THEN rest.rest - gone.sold_out ELSE 0 END AS waiting,
           CASE WHEN s.sold_out_at IS NULL THEN gone.sold_out ELSE rest.rest END AS sold_out
  ) r
  WHERE c.queue_order IS NOT NULL
  ORDER BY c.id
$$;
