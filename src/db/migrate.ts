// Applies the schema: graphile-worker's own migrations, then ours (src/db/migrations/NNNN_*.sql,
// in order, each in its own transaction). Runs once, in the supervisor, before any worker starts;
// a session advisory lock makes concurrent starts (two instances on one database) take turns.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { runMigrations } from 'graphile-worker';
import postgres from 'postgres';

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
// Any constant works; it only has to be the same for every instance.
const MIGRATION_LOCK_ID = 7_211_302;

export async function migrateDatabase(databaseUrl: string): Promise<string[]> {
  // One connection, so the session lock and the migrations share it.
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await runMigrations({ connectionString: databaseUrl, logger: undefined });
    await sql`CREATE TABLE IF NOT EXISTS registrar_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    const applied = new Set((await sql<{ name: string }[]>`SELECT name FROM registrar_migrations`).map((row) => row.name));
    const files = (await readdir(MIGRATIONS_DIR)).filter((file) => /^\d{4}_.+\.sql$/.test(file)).sort();
    const newlyApplied: string[] = [];
    for (const file of files) {
      if (applied.has(file)) continue;
      const text = await readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
      await sql.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`INSERT INTO registrar_migrations (name) VALUES (${file})`;
      });
      newlyApplied.push(file);
    }
    return newlyApplied;
  } finally {
    await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_ID})`.catch(() => {});
    await sql.end();
  }
}
