// The committed schema (src/db/schema.sql) is what the migrations and src/db/functions make, and a
// database migrated by the last released migrations upgrades to exactly that schema.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runMigrations } from 'graphile-worker';
import postgres from 'postgres';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { createTestDatabase, serverUrl } from '../support/database.ts';
import { dumpSchema } from '../support/schema-dump.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const RELEASED_MIGRATIONS_DIR = path.join(ROOT, 'test', 'fixtures', 'released-migrations');

test('a freshly migrated database has exactly the schema committed in src/db/schema.sql', async () => {
  const database = await createTestDatabase(1);
  try {
    const committed = await readFile(path.join(ROOT, 'src', 'db', 'schema.sql'), 'utf8');
    assert.equal(await dumpSchema(database.url), committed, 'src/db/schema.sql is out of date: run npm run schema:dump and commit it');
  } finally {
    await database.drop();
  }
});

test('a database built by the released migrations upgrades to exactly the schema of a fresh one', async () => {
  const name = `upgrade_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const fresh = await createTestDatabase(1);
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await applyReleasedMigrations(url.href);
    await migrateDatabase(url.href);
    assert.equal(await dumpSchema(url.href), await dumpSchema(fresh.url));
  } finally {
    await fresh.drop();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
});

test('an upgraded database holds one overload of each registrar_* function, stale ones dropped', async () => {
  const name = `upgrade_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await applyReleasedMigrations(url.href);
    const sql = postgres(url.href, { max: 1, onnotice: () => {} });
    try {
      // What a database migrated at an intermediate commit holds besides the current signature.
      await sql.unsafe(`CREATE FUNCTION registrar_cancel(uuid, text, boolean) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'`);
      await migrateDatabase(url.href);
      const overloaded = await sql`SELECT proname FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace
        WHERE n.nspname = current_schema() AND proname LIKE 'registrar\_%' GROUP BY 1 HAVING count(*) > 1`;
      // registrar_registration_row's two arities are both current (src/db/functions/registration-row.sql)
      // and no call fits both.
      assert.deepEqual(overloaded.map((row) => row.proname), ['registrar_registration_row']);
    } finally {
      await sql.end();
    }
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
});

// What the released migrateDatabase did: graphile-worker's migrations, then each file once.
async function applyReleasedMigrations(databaseUrl: string): Promise<void> {
  await runMigrations({ connectionString: databaseUrl, logger: undefined });
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`CREATE TABLE registrar_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    for (const file of (await readdir(RELEASED_MIGRATIONS_DIR)).sort()) {
      const text = await readFile(path.join(RELEASED_MIGRATIONS_DIR, file), 'utf8');
      await sql.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`INSERT INTO registrar_migrations (name) VALUES (${file})`;
      });
    }
  } finally {
    await sql.end();
  }
}
