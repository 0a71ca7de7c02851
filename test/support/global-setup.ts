// Runs once per `npm test`: one embedded PostgreSQL for the whole suite, and a migrated template
// database that each test file clones (CREATE DATABASE ... TEMPLATE is a file copy: fast).
// fsync is off here only: these clusters are thrown away, and tests kill processes, never the OS.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/runtime/embedded-database.ts';

export const TEMPLATE_DATABASE = 'registrar_template';

let database: EmbeddedDatabase | undefined;
let dataDir: string | undefined;

export async function globalSetup(): Promise<void> {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-test-'));
  database = await startEmbeddedDatabase({ dataDir, settings: { fsync: 'off', full_page_writes: 'off' } });
  const admin = postgres(database.url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const templateUrl = new URL(database.url);
  templateUrl.pathname = `/${TEMPLATE_DATABASE}`;
  await migrateDatabase(templateUrl.href);
  // Test files run in child processes started after this, with this environment.
  process.env['REGISTRAR_TEST_DATABASE_URL'] = database.url;
  process.env['REGISTRAR_TEST_DATA_DIR'] = dataDir;
}

export async function globalTeardown(): Promise<void> {
  await database?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
