-- Rate-limit counters shared by every worker and instance: one row per (client bucket, minute).
-- Workers add their counts in batches (src/http/rate-limit.ts); old windows are deleted.
CREATE TABLE rate_limit_windows (
  bucket        text NOT NULL,
  window_start  timestamptz NOT NULL,
  count         integer NOT NULL,
  PRIMARY KEY (bucket, window_start)
);

-- Idempotency keys are kept at least 24 hours (then deleted by the job worker's housekeeping).
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
