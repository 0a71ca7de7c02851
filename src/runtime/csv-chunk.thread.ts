// Runs on the worker-thread pool, never on an event loop that serves requests or jobs: plans an
// import file's chunks (planChunks: one linear pass over the file, src/domain/csv-chunks.ts,
// cuts it at record boundaries and reads its header), then parses one chunk (parseCsvChunk:
// RFC 4180 via csv-parse), turns each record into a row (src/domain/import-rows.ts) checked by
// the very schema that validates POST /register, and cuts the rows into the writer's batches
// (the default export; src/domain/import-batches.ts). The file is read here, with synchronous reads:
// this thread has nothing else to do. A badly quoted record is a row error at its first line; the chunk's other rows go on.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { RowError } from '../db/queries/imports.queries.ts';
import { BOM, countNewlines, ImportFileError, NEWLINE, nextLine, scanRecord } from '../domain/csv-chunks.ts';
import { readHeader } from '../domain/csv-header.ts';
import type { ImportBatch } from '../db/queries/imports.queries.ts';
import { toImportBatches } from '../domain/import-batches.ts';
import { type Chunk, type ChunkBatchesTask, type ChunkTask, type ColumnIndexes, type ParsedChunk, type Plan, type PlanTask, rowCandidate, type RowCandidate, toImportRow } from '../domain/import-rows.ts';
import { RegisterBody } from '../http/schemas/registration.schemas.ts';
import { toFieldErrors, validatorCompiler } from '../http/validation.ts';
import { generateManageToken } from '../security/tokens.ts';

const validate = validatorCompiler({ schema: RegisterBody, method: 'POST', url: '/register', httpPart: 'body' }) as ((value: unknown) => boolean) & { errors?: unknown[] | null };

/** POST /register's body rules, as toImportRow asks for them: the broken fields, or null. */
function checkRegisterBody(candidate: RowCandidate): string | null {
  if (validate(candidate)) return null;
  return toFieldErrors((validate.errors ?? []) as never, 'body').map((f) => `${f.field} ${f.message}`).join('; ');
}

function readRange(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const read = readSync(fd, buffer, filled, length - filled, position + filled);
    if (read === 0) break;
    filled += read;
  }
  return buffer.subarray(0, filled);
}

function withFile<T>(file: string, use: (fd: number) => T): T {
  const fd = openSync(file, 'r');
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Cuts the file into chunks of about chunkBytes, each ending at a record boundary, reading it
 * through a window that always holds a whole record's worth (maxRecordBytes) past the record
 * being scanned. Linear: a record is scanned once, a bad one once more up to its first newline.
 */
export function planChunks(task: PlanTask): Plan {
  return withFile(task.file, (fd) => {
    const size = fstatSync(fd).size;
    const windowBytes = Math.max(task.chunkBytes, task.maxRecordBytes) * 2;
    let window: Buffer = Buffer.alloc(0);
    let windowStart = 0;
    /** The window holds [position, position + bytes), or up to the end of the file. */
    const hold = (position: number, bytes: number) => {
      if (position >= windowStart && Math.min(size, position + bytes) <= windowStart + window.length) return;
      window = readRange(fd, position, Math.min(size - position, Math.max(bytes, windowBytes)));
      windowStart = position;
    };
    hold(0, 3);
    let position = window.subarray(0, 3).equals(BOM) ? 3 : 0;
    if (position >= size) return { failure: 'the file is empty: line 1 must be a header with the columns name,email,course' };

    /** Scans the record at `position`: where the next one starts, the newlines it spans, and
     * why it is bad, if it is. */
    const next = (): { end: number; newlines: number; error: string | null } => {
      hold(position, task.maxRecordBytes + 1);
      const scan = scanRecord(window, position - windowStart, window.length, task.maxRecordBytes);
      if (scan.error === null) return { end: windowStart + scan.end, newlines: countNewlines(window, position - windowStart, scan.end), error: null };
      // Bad: it ends at its first newline, which may lie past the window (a very long line).
      for (let from = position; ;) {
        const at = window.indexOf(NEWLINE, from - windowStart);
        if (at !== -1) return { end: windowStart + at + 1, newlines: 1, error: scan.error };
        const windowEnd = windowStart + window.length;
        if (windowEnd >= size) return { end: size, newlines: 0, error: scan.error };
        from = windowEnd;
        hold(from, task.chunkBytes);
      }
    };

    const header = next();
    let columns: ColumnIndexes;
    try {
      if (header.error !== null) throw new ImportFileError(`line 1 is not a CSV header: ${header.error}`);
      hold(position, header.end - position);
      columns = readHeader(window.subarray(position - windowStart, header.end - windowStart).toString('utf8'));
    } catch (error) {
      return { failure: (error as Error).message };
    }
    position = header.end;
    let line = 1 + header.newlines;
    const chunks: Chunk[] = [];
    let chunk: Chunk = { start: position, end: position, firstLine: line };
    while (position < size) {
      const record = next();
      position = record.end;
      line += record.newlines;
      if (position - chunk.start >= task.chunkBytes) {
        chunks.push({ ...chunk, end: position });
        chunk = { start: position, end: position, firstLine: line };
      }
    }
    if (position > chunk.start) chunks.push({ ...chunk, end: position });
    return { columns, chunks };
  });
}

/**
 * The chunk's text with each badly quoted record's first line emptied (its newline kept, so
 * csv-parse counts lines as the file does and skips it as blank), those records' errors, and
 * for each good record spanning several lines (a quoted newline) the line it starts on, by the
 * line it ends on: csv-parse tells only the latter (info.lines), and every row error names the
 * record's first line, as a quoting error does.
 */
function dropBadRecords(bytes: Buffer, firstLine: number, maxRecordBytes: number): { text: string; errors: RowError[]; startLines: Map<number, number> } {
  const errors: RowError[] = [];
  const startLines = new Map<number, number>();
  const kept: Buffer[] = [];
  let keptFrom = 0;
  let line = firstLine;
  for (let position = 0; position < bytes.length;) {
    const scan = scanRecord(bytes, position, bytes.length, maxRecordBytes);
    if (scan.error === null) {
      const newlines = countNewlines(bytes, position, scan.end);
      // The newline that ends the record (none at the end of the input) is not a line of it.
      const endLine = line + newlines - (bytes[scan.end - 1] === NEWLINE ? 1 : 0);
      if (endLine > line) startLines.set(endLine, line);
      line += newlines;
      position = scan.end;
      continue;
    }
    errors.push({ line, message: scan.error });
    const end = nextLine(bytes, position, bytes.length);
    kept.push(bytes.subarray(keptFrom, position));
    if (bytes[end - 1] === NEWLINE) kept.push(Buffer.from('\n'));
    keptFrom = end;
    line += 1;
    position = end;
  }
  if (errors.length === 0) return { text: bytes.toString('utf8'), errors, startLines };
  kept.push(bytes.subarray(keptFrom));
  return { text: Buffer.concat(kept).toString('utf8'), errors, startLines };
}

export function parseCsvChunk(task: ChunkTask): ParsedChunk {
  const rows: ParsedChunk['rows'] = [];
  const bytes = withFile(task.file, (fd) => readRange(fd, task.start, task.end - task.start));
  const { text, errors, startLines } = dropBadRecords(bytes, task.firstLine, task.maxRecordBytes);
  const base = task.firstLine - 1; // csv-parse counts the chunk's lines from 1
  /** The file line a record starts on, from csv-parse's line of its end (counted in the chunk). */
  const startLine = (chunkEndLine: number) => startLines.get(base + chunkEndLine) ?? base + chunkEndLine;
  const records = parse(text, {
    info: true,
    record_delimiter: ['\r\n', '\n'], // CRLF or LF, even mixed in one file
    relax_column_count: true, // a short or long row is judged by its fields, not refused whole
    skip_empty_lines: true,
    trim: true, // spaces around fields (outside quotes) are not data
    skip_records_with_error: true,
    on_skip: (error) => {
      if (error) errors.push({ line: startLine(Number((error as { lines?: number }).lines ?? 0)), message: `not valid CSV: ${error.message.replace(/^Invalid Record Length: /, '')}` });
      return undefined;
    },
  }) as unknown as { record: string[]; info: { lines: number } }[];
  for (const { record, info } of records) {
    const outcome = toImportRow(startLine(info.lines), rowCandidate(record, task.columns), checkRegisterBody, generateManageToken());
    if ('row' in outcome) rows.push(outcome.row);
    else errors.push(outcome.error);
  }
  errors.sort((a, b) => a.line - b.line);
  return { rows, errors };
}

/** The pool's default task: a chunk parsed into the batches the job worker writes. */
export default function parseChunkBatches(task: ChunkBatchesTask): ImportBatch[] {
  return toImportBatches(parseCsvChunk(task), task);
}
