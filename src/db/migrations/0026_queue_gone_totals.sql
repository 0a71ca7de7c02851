-- How many places of the course have left (DELETE /queue/{id}, counted by registrar_queue_leave)
-- and been sold out (counted by registrar_admit): the HTTP workers' memory of waiting places
-- (src/domain/queue-place-memory.ts) reads their sum with the queue's state, and a sum that moved
-- means some waiting place it remembers may have left or sold out through another process.
ALTER TABLE queue_states
  ADD COLUMN left_total bigint NOT NULL DEFAULT 0,
  ADD COLUMN sold_out_total bigint NOT NULL DEFAULT 0;
