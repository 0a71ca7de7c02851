// The PostgreSQL and driver error codes this service treats specially; those after which an
// attempt runs again are in src/db/retry-policy.ts.
// https://www.postgresql.org/docs/current/errcodes-appendix.html

/** SQLSTATEs and socket errors that mean "the database is unreachable right now", not a bug. */
const UNAVAILABLE_CODES = new Set([
  '57P01', // admin_shutdown: the server is shutting down or restarting
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or in recovery
  '53300', // too_many_connections
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08P01', // protocol_violation: how PgBouncer reports its own refusals (its server connection lost, no server to connect to, query_wait_timeout)
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED', // postgres.js: the socket closed under a query
  'CONNECTION_ENDED', // postgres.js: sql.end() was called
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

/**
 * SQLSTATEs of a database short of a resource: a full disk (53100: no room for a table, index
 * or WAL write), memory (53200), some other resource (53000), or an I/O error (58030, which
 * PostgreSQL also reports for a write that ENOSPC cut short). The statement failed and its
 * transaction rolled back; the next may succeed once space or memory is freed. Temporary, not
 * a bug: a request is told to retry, a job is retried (src/jobs/job-runners.ts), also when
 * graphile-worker writes its outcome. When a WAL write itself fails, the
 * server PANICs and restarts: then the connections drop (the codes above).
 */
export const OUT_OF_RESOURCES_CODES: ReadonlySet<string> = new Set([
  '53000', // insufficient_resources
  '53100', // disk_full
  '53200', // out_of_memory
  '58030', // io_error
]);

export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && UNAVAILABLE_CODES.has(code);
}

export function isDatabaseOutOfResources(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && OUT_OF_RESOURCES_CODES.has(code);
}

/**
 * SQLSTATEs of a transaction rolled back for a concurrent one: a deadlock (40P01), a
 * serialization failure (40001), or a waiting swap's old course held by another transaction
 * (RGW01, src/db/functions/swap.sql). Retried by src/db/retry-policy.ts and src/db/swap-locks.ts;
 * one that keeps coming back after its attempts is temporary all the same, and answered 503 with
 * Retry-After, not 500.
 */
const CONFLICT_CODES: ReadonlySet<string> = new Set(['40P01', '40001', 'RGW01']);

export function isTransactionConflict(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && CONFLICT_CODES.has(code);
}
