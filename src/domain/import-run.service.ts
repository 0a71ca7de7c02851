// One import's run as the import_csv job drives it: whether it starts, resumes or is already
// over; its rows written in file order, a batch per transaction; how it ends. The status is
// queued -> running -> done | failed; a retried attempt finds it running and resumes after
// done_through_line, the last line its earlier batches committed.
import type { Sql } from '../db/database.ts';
import { applyImportBatch, findImport, type ImportBatch, setImportStatus } from '../db/queries/imports.queries.ts';

export type ImportRunStart =
  | { kind: 'missing' }
  /** Done or failed, but its process stopped before the upload was deleted. */
  | { kind: 'ended'; file: string }
  | { kind: 'started'; file: string; resumeAfterLine: number };

/** Marks the import running unless it is gone or over; says where its file is and where to resume. */
export async function startImportRun(sql: Sql, importId: string): Promise<ImportRunStart> {
  const imported = await findImport(sql, importId);
  if (!imported) return { kind: 'missing' };
  if (imported.status === 'done' || imported.status === 'failed') return { kind: 'ended', file: imported.file_path };
  await setImportStatus(sql, importId, 'running');
  return { kind: 'started', file: imported.file_path, resumeAfterLine: imported.done_through_line };
}

export async function finishImportRun(sql: Sql, importId: string): Promise<void> {
  await setImportStatus(sql, importId, 'done');
}

/** Ends the import for good, with the reason its report shows. */
export async function failImportRun(sql: Sql, importId: string, reason: string): Promise<void> {
  await setImportStatus(sql, importId, 'failed', reason);
}

/**
 * Writes consecutive lines of the file in one transaction (registrar_import_batch: the rules of
 * POST /register) and moves the resume point to the last of them. The batch's rows come in a
 * stable sort by course (src/domain/import-batches.ts): each course keeps the file's order, and
 * course locks are taken in one order.
 */
export async function writeImportBatch(sql: Sql, importId: string, batch: ImportBatch): Promise<void> {
  await applyImportBatch(sql, importId, batch);
}
