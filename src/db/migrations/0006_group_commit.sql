-- This migration changed functions only, and has nothing left to run. The live definitions of
-- registrar_register_batch, registrar_register, registrar_record_events and registrar_import_batch
-- are in src/db/functions/ (register-batch.sql, record-events.sql, import-batch.sql).
SELECT 1;
