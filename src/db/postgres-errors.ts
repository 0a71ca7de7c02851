// The PostgreSQL and driver error codes this service treats specially, in one place.
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

/**
 * SQLSTATEs after which a transaction may simply run again: PostgreSQL rolled all of it back
 * to break a cycle or a conflict, so nothing of it was committed and the retry cannot apply it
 * twice.
 */
const RETRYABLE_TRANSACTION_CODES = new Set([
  '40P01', // deadlock_detected: e.g. a locked-first registration batch and a lock-last one inserting the same student (src/db/functions/register-batch.sql)
  '40001', // serialization_failure
]);

/** Attempts of a transaction that keeps meeting retryable errors before its error is the answer. */
const TRANSACTION_ATTEMPTS = 3;

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

/** Runs a transaction (one statement, or a whole sql.begin) again when PostgreSQL rolled it back for a retryable reason. */
export async function retryTransaction<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run();
    } catch (error) {
      const code = errorCode(error);
      if (attempt >= TRANSACTION_ATTEMPTS || code === undefined || !RETRYABLE_TRANSACTION_CODES.has(code)) throw error;
    }
  }
}
