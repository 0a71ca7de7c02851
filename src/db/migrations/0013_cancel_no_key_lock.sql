-- This migration changed functions only, and has nothing left to run: the live definition of
-- registrar_cancel locks its course FOR NO KEY UPDATE: src/db/functions/cancel.sql.
SELECT 1;
