// The import_csv task: a pipeline with bounded stages. A worker thread plans the file's chunks
// (cut at record boundaries in one linear pass, src/domain/csv-chunks.ts); chunks are read,
// parsed and validated on the thread pool, at most two per thread in flight; results are written
// in file order, in batches, each batch one transaction through registrar_import_batch (the rules,
// emails and webhooks of POST /register) that also advances the import's resume point. The writer
// is the slowest stage; awaiting it stops the parsing, so memory stays flat whatever the file's
// size. Nothing here scans the file's bytes: the job worker's event loop stays free for the other
// jobs (emails, webhooks). The uploaded file is deleted once the import ends, done or failed;
// until then it stays, for a retried attempt to resume from.
import { rm } from 'node:fs/promises';
import type { Task } from 'graphile-worker';
import type { Logger } from 'pino';
import type { Sql } from '../../db/database.ts';
import { DEFAULT_MAX_RECORD_BYTES, ImportFileError } from '../../domain/csv-chunks.ts';
import type { ImportBatch } from '../../domain/import-batches.ts';
import type { ImportThreads } from '../../domain/import-rows.ts';
import { failImportRun, finishImportRun, startImportRun, writeImportBatch } from '../../domain/import-run.service.ts';

export type ImportCsvDeps = { sql: Sql; pool: ImportThreads; logger: Logger; batchRows?: number; chunkBytes?: number; maxRecordBytes?: number };

/** Items (rows and errors) a batch, one transaction each, unless the deps say otherwise. */
export const IMPORT_BATCH_ROWS = 1000;

/**
 * The bytes of file a thread parses in one task (about 2,000 rows). Small, because a chunk's
 * text, its records, its rows and its batches are all alive in the thread at once, and the job
 * worker's memory follows: 1 MiB chunks peaked 130-300 MiB higher than these, at the same pace
 * (docs/benchmarks.md, "Where the job worker's memory goes").
 */
export const IMPORT_CHUNK_BYTES = 128 * 1024;

export function createImportCsvTask(deps: ImportCsvDeps): Task {
  const batchRows = deps.batchRows ?? IMPORT_BATCH_ROWS;
  const chunkBytes = deps.chunkBytes ?? IMPORT_CHUNK_BYTES;
  const maxRecordBytes = deps.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  return async function importCsv(payload, helpers) {
    const importId = (payload as { importId?: unknown } | null)?.importId;
    if (typeof importId !== 'string') throw new Error(`import_csv: malformed payload ${JSON.stringify(payload)}`);
    const run = await startImportRun(deps.sql, importId);
    if (run.kind === 'missing') return;
    // Ended, but the process stopped before its file was deleted: the job runs again, deletes it.
    if (run.kind === 'ended') return removeUpload(run.file);
    try {
      await runImport(importId, run.file, run.resumeAfterLine);
      await finishImportRun(deps.sql, importId);
    } catch (error) {
      const final = error instanceof ImportFileError || helpers.job.attempts >= helpers.job.max_attempts;
      if (!final) throw error; // retried by the queue; the next attempt resumes after the last batch
      const reason = error instanceof Error ? error.message : String(error);
      deps.logger.warn({ importId, reason }, 'import failed');
      await failImportRun(deps.sql, importId, reason);
    }
    await removeUpload(run.file);
  };

  /** The status is committed first: a file is never gone while its import may still need it. */
  async function removeUpload(file: string): Promise<void> {
    try {
      await rm(file, { force: true });
    } catch (error) {
      deps.logger.warn({ file, err: error }, 'could not delete an ended import\'s upload');
    }
  }

  async function runImport(importId: string, file: string, resumeAfterLine: number): Promise<void> {
    const plan = await deps.pool.planChunks({ file, chunkBytes, maxRecordBytes });
    if ('failure' in plan) throw new ImportFileError(plan.failure);
    const maxInFlight = deps.pool.threads * 2;
    const inFlight: Promise<ImportBatch[]>[] = [];

    const writeNext = async () => {
      for (const batch of await inFlight.shift()!) await writeImportBatch(deps.sql, importId, batch);
    };

    for (const [index, chunk] of plan.chunks.entries()) {
      // A resumed import skips the chunks its earlier attempts wrote whole.
      const following = plan.chunks[index + 1];
      if (following && following.firstLine - 1 <= resumeAfterLine) continue;
      const parsing = deps.pool.parseChunk({ ...chunk, file, columns: plan.columns, maxRecordBytes, batchRows, resumeAfterLine });
      parsing.catch(() => {}); // awaited in order by writeNext; this only marks it handled
      inFlight.push(parsing);
      if (inFlight.length >= maxInFlight) await writeNext();
    }
    while (inFlight.length > 0) await writeNext();
  }
}
