// Owns the connection pool of one process. The pool size is the bound on concurrent database
// work in this process: a request that finds every connection busy waits in the pool's queue.
import postgres from 'postgres';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

export type DatabaseOptions = {
  max: number;
  applicationName: string;
};

export function connectDatabase(url: string, options: DatabaseOptions): Sql {
  return postgres(url, {
    max: options.max,
    connect_timeout: 10,
    idle_timeout: 60,
    // Prepared statements: parse and plan once per connection, not once per request.
    prepare: true,
    onnotice: () => {},
    connection: { application_name: options.applicationName },
  });
}
