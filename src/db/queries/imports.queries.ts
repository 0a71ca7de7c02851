// SQL for imports: the row that tracks one, its job, and one batch of its rows.
import type { Sql } from '../database.ts';
import { retryTransaction } from '../retry-policy.ts';

/** A row of an import file, validated and normalized; line numbers are the file's (header: 1). */
export type ParsedRow = { line: number; course: string; name: string; email: string; emailKey: string; token: string };
/** A row of an import file that was refused, and why: stored in imports.errors. */
export type RowError = { line: number; message: string };

export type ImportStatus = 'queued' | 'running' | 'done' | 'failed';

export type ImportRow = {
  id: string;
  status: ImportStatus;
  file_path: string;
  file_bytes: string;
  rows: number;
  processed: number;
  created: number;
  existing: number;
  waitlisted: number;
  rejected: number;
  errors: RowError[];
  done_through_line: number;
  failure: string | null;
  created_at: Date;
  finished_at: Date | null;
};

const COLUMNS = 'id, status, file_path, file_bytes::text, rows, processed, created, existing, waitlisted, rejected, errors, done_through_line, failure, created_at, finished_at';

/** The import and its job, in one transaction: a committed import is always processed. */
export async function insertImport(sql: Sql, values: { id: string; filePath: string; fileBytes: number }): Promise<ImportRow> {
  return sql.begin(async (tx) => {
    const [row] = await tx<ImportRow[]>`
      INSERT INTO imports (id, file_path, file_bytes) VALUES (${values.id}, ${values.filePath}, ${values.fileBytes})
      RETURNING ${tx.unsafe(COLUMNS)}`;
    await tx`SELECT graphile_worker.add_job('import_csv', json_build_object('importId', ${values.id}::text), max_attempts => 10)`;
    if (!row) throw new Error('insert into imports returned no row');
    return row;
  });
}

export async function findImport(sql: Sql, id: string): Promise<ImportRow | undefined> {
  const [row] = await sql<ImportRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM imports WHERE id = ${id}`;
  return row;
}

export async function listImports(sql: Sql, limit: number): Promise<ImportRow[]> {
  return sql<ImportRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM imports ORDER BY created_at DESC, id LIMIT ${limit}`;
}

export async function setImportStatus(sql: Sql, id: string, status: ImportStatus, failure: string | null = null): Promise<void> {
  await sql`
    UPDATE imports SET status = ${status}, failure = ${failure}, updated_at = now(),
      finished_at = CASE WHEN ${status} IN ('done', 'failed') THEN now() END
    WHERE id = ${id}`;
}

export type BatchOutcome = { skipped?: true; created?: number; existing?: number; waitlisted?: number; rejected?: number };

/**
 * A batch of an import's rows (src/domain/import-batches.ts): each column of its `rows` rows as
 * an array literal (src/db/array-literal.ts), its errors, how many items (rows and errors) it
 * covers and the file line it ends at.
 */
export type ImportBatch = {
  rows: number;
  lines: string; courses: string; names: string; emails: string; emailKeys: string; tokens: string;
  errors: RowError[];
  items: number;
  throughLine: number;
};

/** One batch in one transaction (registrar_import_batch): its rows, its errors, the progress;
 * lock last first, and after a failed attempt as src/db/retry-policy.ts decides. */
export async function applyImportBatch(sql: Sql, importId: string, batch: ImportBatch): Promise<BatchOutcome> {
  const [result] = await retryTransaction((lockFirst) => sql<{ outcome: BatchOutcome }[]>`
    SELECT registrar_import_batch(${lockFirst}::boolean, ${importId}, ${batch.lines}::int[], ${batch.courses}::text[],
      ${batch.names}::text[], ${batch.emails}::text[], ${batch.emailKeys}::text[],
      ${batch.tokens}::text[], ${sql.json(batch.errors)}::jsonb, ${batch.items}, ${batch.throughLine}) AS outcome`);
  return result?.outcome ?? {};
}
