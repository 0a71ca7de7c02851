// npm run schema:dump: migrates a fresh database (a throwaway embedded PostgreSQL) and writes its
// schema to src/db/schema.sql, the file the schema test compares with what the migrations make.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrateDatabase } from '../src/db/migrate.ts';
import { startEmbeddedDatabase } from '../src/runtime/embedded-database.ts';
import { dumpSchema } from '../test/support/schema-dump.ts';

const SCHEMA_FILE = path.join(import.meta.dirname, '..', 'src', 'db', 'schema.sql');

const dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-schema-'));
try {
  const database = await startEmbeddedDatabase({ dataDir, settings: { fsync: 'off' } });
  try {
    await migrateDatabase(database.url);
    await writeFile(SCHEMA_FILE, await dumpSchema(database.url));
    console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
  } finally {
    await database.stop();
  }
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
