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

export const UNIQUE_VIOLATION = '23505';

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
