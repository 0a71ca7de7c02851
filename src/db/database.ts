// Owns the connection pool of one process. The pool size is the bound on concurrent database
// work in this process: a request that finds every connection busy waits in the pool's queue.
import postgres from 'postgres';
import { isDatabaseUnavailable } from './postgres-errors.ts';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

export type DatabaseOptions = {
  max: number;
  applicationName: string;
  /**
   * How plans are kept, so that none made on empty tables (a new term, a fresh install) keeps
   * its sequential scans once they grow, until an ANALYZE happens to invalidate it (measured:
   * such plans cost 30-60% of the throughput).
   * - 'fresh' (the default, request paths): a plan is made for each execution, with the values
   *   at hand and the tables' sizes now. Cheap there: the hot path is one statement per batch of
   *   registrations, and the registrar_* functions keep plans of their own that cannot scan.
   * - 'keyed' (the job worker: many small statements, each a lookup by key): plans are cached
   *   as usual, and sequential scans are avoided wherever an index can serve.
   */
  planning?: 'fresh' | 'keyed';
  /**
   * The address is a pooler in transaction pooling mode (PgBouncer): consecutive transactions of
   * one client connection may run on different server connections. So no named prepared
   * statement (it would exist on one server connection only) and no setting in the startup
   * packet (PgBouncer refuses what it does not track). Each statement is then parsed unnamed and
   * planned at Bind with its values, which is what 'fresh' asks for; settings the server
   * connections need come from the pooler (its connect_query).
   */
  transactionPooling?: boolean;
};

export function connectDatabase(url: string, options: DatabaseOptions): Sql {
  const pooled = options.transactionPooling === true;
  const planning = options.planning === 'keyed' ? { enable_seqscan: 'off' } : { plan_cache_mode: 'force_custom_plan' };
  return postgres(url, {
    max: options.max,
    connect_timeout: 10,
    idle_timeout: 60,
    // Prepared statements: parsed once per connection, not once per request (unless pooled).
    prepare: !pooled,
    onnotice: () => {},
    connection: { application_name: options.applicationName, ...(pooled ? {} : planning) },
    // postgres.js's default backoff grows with a counter shared by every connection of the pool
    // (3^n / 100 s, up to 20 s): a database restart of two seconds, with ten connections failing
    // to reconnect, left every query queued for ten to twenty seconds more. Reconnect within a
    // second instead (jittered); an attempt is one TCP connect to a database that is down.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1),
  });
}

/**
 * For an HTTP worker, whose only database client is this pool. postgres.js (3.4.9) runs a query
 * of its own on every new connection (the array types) and drops its promise
 * (porsager/postgres#1192): if the database goes away during it (a restart), the rejection is
 * unhandled, and Node would kill the worker with every request in flight. Such a rejection is
 * only a lost connection, which the pool recovers from: log it. Anything else still crashes.
 * (Not for the job worker: an unhandled rejection there can come from graphile-worker's own
 * bookkeeping, and a crash is what makes the lease keeper free the jobs it held.)
 */
export function surviveLostConnections(log: (error: unknown) => void): void {
  process.on('unhandledRejection', (reason) => {
    if (!isDatabaseUnavailable(reason)) throw reason;
    log(reason);
  });
}
