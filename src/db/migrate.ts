// Applies the schema: graphile-worker's own migrations, then ours (src/db/migrations/NNNN_*.sql:
// tables, indexes and data moves, in order, each in its own transaction, each once), then every
// SQL function's live definition (src/db/functions/*.sql, CREATE OR REPLACE, at every start, in
// FUNCTION_FILES order, in one transaction). Runs in the supervisor, before any worker starts; a
// session advisory lock makes concurrent starts (two instances on one database) take turns.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { runMigrations } from 'graphile-worker';
import postgres from 'postgres';

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
const FUNCTIONS_DIR = path.join(import.meta.dirname, 'functions');
// Dependency order: a LANGUAGE sql function's body is checked when it is created, so what it calls
// comes first (course-window, registration-row and active-registration before the functions
// that use them, record-events and queue-emails before the functions that record events or send
// the queue's emails, queue-places before the registration batch and the queue's join and admission).
const FUNCTION_FILES = [
  'course-window.sql',
  'registration-row.sql',
  'active-registration.sql',
  'record-events.sql',
  'offers.sql',
  'queue-emails.sql',
  'promote-waitlisted.sql',
  'queue-places.sql',
  'register-batch.sql',
  'register-courses.sql',
  'cancel.sql',
  'swap.sql',
  'import-batch.sql',
  'remind.sql',
  'delivery-figures.sql',
  'queue-join.sql',
  'queue-admit.sql',
  'queue-figures.sql',
];
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
    // The pending migrations and the functions' bodies commit together: an instance of the
    // previous release never sees a table change (or a dropped function) without the bodies
    // written for it.
    await sql.begin(async (tx) => {
      for (const file of files) {
        if (applied.has(file)) continue;
        await tx.unsafe(await readFile(path.join(MIGRATIONS_DIR, file), 'utf8'));
        await tx`INSERT INTO registrar_migrations (name) VALUES (${file})`;
        newlyApplied.push(file);
      }
      await applyFunctions(tx);
    });
    return newlyApplied;
  } finally {
    // Ending the session releases its advisory lock. Bounded: after the server went away in the
    // middle (a stop during start-up), postgres.js's end() otherwise waits for ever.
    await sql.end({ timeout: 5 });
  }
}

async function applyFunctions(tx: postgres.TransactionSql): Promise<void> {
  const present = (await readdir(FUNCTIONS_DIR)).filter((file) => file.endsWith('.sql')).sort();
  const unlisted = present.filter((file) => !FUNCTION_FILES.includes(file));
  if (unlisted.length > 0) {
    throw new Error(`src/db/functions has files missing from FUNCTION_FILES in src/db/migrate.ts: ${unlisted.join(', ')}; add them in dependency order`);
  }
  const texts = await Promise.all(FUNCTION_FILES.map((file) => readFile(path.join(FUNCTIONS_DIR, file), 'utf8')));
  for (const text of texts) await tx.unsafe(text);
}
