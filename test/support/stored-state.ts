// Everything the service has stored, as one comparable value: a count and a digest of every table
// of the public schema (courses, registrations, events, keys, tokens, deliveries, ...) and the
// number of queued jobs. A request that must change nothing leaves it equal.
import type { Sql } from '../../src/db/database.ts';

export type StoredState = Record<string, string>;

/** The one query per list of left-out tables: every test database is a clone of one template. */
const queries = new Map<string, Promise<string>>();

async function buildQuery(sql: Sql, leftOut: readonly string[]): Promise<string> {
  const tables = await sql<{ name: string }[]>`
    SELECT quote_ident(tablename) AS name FROM pg_tables
    WHERE schemaname = 'public' AND tablename <> 'registrar_migrations' AND tablename <> ALL(${[...leftOut]}::text[])
    ORDER BY tablename`;
  return [
    ...tables.map(({ name }) => `SELECT '${name}' AS name, count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest FROM ${name} t`),
    `SELECT 'graphile_worker jobs', count(*)::text FROM graphile_worker._private_jobs`,
  ].join(' UNION ALL ');
}

/** One round trip once the query is built; `leftOut` names tables a refusal may write to. */
export async function readStoredState(sql: Sql, leftOut: readonly string[] = []): Promise<StoredState> {
  const key = leftOut.join(',');
  let query = queries.get(key);
  if (query === undefined) {
    query = buildQuery(sql, leftOut);
    queries.set(key, query);
  }
  const rows = await sql.unsafe<{ name: string; digest: string }[]>(await query);
  return Object.fromEntries(rows.map((row) => [row.name, row.digest]));
}
