// Makes PostgreSQL refuse the first N writes of one kind to one table with disk_full (53100), as a
// full disk refuses them, for tests of what retries a write; the real full disk is
// test/e2e/disk-full.test.ts.
import type { Sql } from '../../src/db/database.ts';

export type RefusedWrite = { table: string; operation: 'INSERT' | 'UPDATE' | 'DELETE'; times: number };

export async function refuseWritesWithDiskFull(sql: Sql, { table, operation, times }: RefusedWrite): Promise<void> {
  const kept = operation === 'DELETE' ? 'OLD' : 'NEW';
  // A sequence, not a table: nextval() is not rolled back with the refused statement.
  await sql.unsafe(`
    CREATE SEQUENCE test_refused_writes;
    CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('test_refused_writes') <= ${times} THEN
        RAISE EXCEPTION 'could not extend file "base/1/2": No space left on device' USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
      END IF;
      RETURN ${kept};
    END $$;
    CREATE TRIGGER test_disk_full BEFORE ${operation} ON ${table} FOR EACH ROW EXECUTE FUNCTION test_disk_full();`);
}

/** Writes tried so far, the refused ones included. */
export async function writesTried(sql: Sql): Promise<number> {
  const [row] = await sql<{ tried: string }[]>`SELECT last_value::text AS tried FROM test_refused_writes`;
  return Number(row!.tried);
}
