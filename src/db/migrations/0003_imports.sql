-- Bulk imports: an uploaded CSV file, processed by the import_csv job in batches. Each batch is
-- one transaction that registers its rows through registrar_register (the rules, emails and
-- webhooks of POST /register) and advances the import's progress, so a restart resumes exactly
-- after the last committed batch and never applies a row twice.
-- registrar_import_batch: src/db/functions/import-batch.sql.

-- Status: 'queued' (uploaded, job waiting) -> 'running' -> 'done' | 'failed'.
CREATE TABLE imports (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  status         text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  file_path      text NOT NULL,
  file_bytes     bigint NOT NULL,
  -- Data rows read so far (the file is streamed, so the total is known when it is done).
  rows           integer NOT NULL DEFAULT 0,
  processed      integer NOT NULL DEFAULT 0,
  created        integer NOT NULL DEFAULT 0,
  existing       integer NOT NULL DEFAULT 0,
  waitlisted     integer NOT NULL DEFAULT 0,
  rejected       integer NOT NULL DEFAULT 0,
  -- The first 100 row errors: [{"line": n, "message": "..."}].
  errors         jsonb NOT NULL DEFAULT '[]',
  -- Resume point: every data row on or before this line of the file is committed.
  done_through_line integer NOT NULL DEFAULT 0,
  failure        text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);
CREATE INDEX imports_newest ON imports (created_at DESC, id);
