-- This migration changed functions only, and has nothing left to run: the live definition of
-- registrar_register_batch, lock-last batches: src/db/functions/register-batch.sql.
SELECT 1;
