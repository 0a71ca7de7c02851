-- Every process reads, every 100 ms, the clients over the limit in the current window
-- (src/http/rate-limit.ts): a short range scan on this index instead of the whole table.
CREATE INDEX rate_limit_windows_by_window ON rate_limit_windows (window_start, count);
