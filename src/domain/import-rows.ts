// The rules of an import file's rows: the chunk tasks the thread pool runs on it (ImportThreads),
// and what one record becomes: a row registered as POST /register would, or an error at its line.
import type { ImportBatch, ParsedRow, RowError } from '../db/queries/imports.queries.ts';
import type { BatchPlan } from './import-batches.ts';
import { normalizeStudent } from './registration.ts';

/** Where each required field is in a record, found by the header (csv-header.ts). */
export type ColumnIndexes = { name: number; email: number; course: number };

/** One chunk: bytes [start, end) of the file, whole records, its first line's number. */
export type Chunk = { start: number; end: number; firstLine: number };
/** A chunk to parse (UTF-8), where each field is, and the record size bound. */
export type ChunkTask = Chunk & { file: string; columns: ColumnIndexes; maxRecordBytes: number };
/** A chunk parsed: its rows and its errors, each in line order. */
export type ParsedChunk = { rows: ParsedRow[]; errors: RowError[] };
/** A chunk to parse into the batches its rows are written in. */
export type ChunkBatchesTask = ChunkTask & BatchPlan;

export type PlanTask = { file: string; chunkBytes: number; maxRecordBytes: number };
/** The chunks in file order, or why the file cannot be imported at all (its header). */
export type Plan = { columns: ColumnIndexes; chunks: Chunk[] } | { failure: string };

/** What plans and parses an import off the event loop (the worker-thread pool). */
export type ImportThreads = {
  readonly threads: number;
  planChunks(task: PlanTask): Promise<Plan>;
  /** The chunk parsed, in the batches the writer applies (src/domain/import-batches.ts). */
  parseChunk(task: ChunkBatchesTask): Promise<ImportBatch[]>;
};

/** The fields of a record as POST /register's body would carry them (missing ones empty). */
export type RowCandidate = { name: string; email: string; course: string };

export function rowCandidate(record: readonly string[], columns: ColumnIndexes): RowCandidate {
  return { name: record[columns.name] ?? '', email: record[columns.email] ?? '', course: record[columns.course] ?? '' };
}

/**
 * The row a record at `line` becomes, or its error. `check` is POST /register's body schema
 * (passed in: the schema belongs to http); it names the fields that break it, or returns null.
 */
export function toImportRow(line: number, candidate: RowCandidate, check: (candidate: RowCandidate) => string | null, token: string): { row: ParsedRow } | { error: RowError } {
  const broken = check(candidate);
  if (broken !== null) return { error: { line, message: broken } };
  const student = normalizeStudent(candidate);
  return { row: { line, course: candidate.course, name: student.name, email: student.email, emailKey: student.emailKey, token } };
}
