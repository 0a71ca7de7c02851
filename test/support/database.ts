// A fresh database per test file, cloned from the migrated template made by global-setup.ts.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { connectDatabase, type Sql } from '../../src/db/database.ts';

export type TestDatabase = {
  url: string;
  sql: Sql;
  drop(): Promise<void>;
};

export function serverUrl(): string {
  const url = process.env['REGISTRAR_TEST_DATABASE_URL'];
  if (!url) throw new Error('REGISTRAR_TEST_DATABASE_URL is unset: run the tests with `npm test`, which starts the test database');
  return url;
}

export async function createTestDatabase(poolSize = 20): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE registrar_template`);
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const sql = connectDatabase(url.href, { max: poolSize, applicationName: 'registrar-test' });
  return {
    url: url.href,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
