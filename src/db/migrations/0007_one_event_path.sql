-- This migration changed functions only, and has nothing left to run: the live definition of
-- registrar_record_event as a batch of one of registrar_record_events (src/db/functions/record-events.sql); the job-batch helpers of 0002 are dropped.
SELECT 1;
