// Runs on the worker-thread pool: parses one chunk of an import file (RFC 4180, via csv-parse)
// and validates each row against the very schema that validates POST /register. CPU-heavy, so
// never on an event loop that serves requests. A chunk always starts at a record boundary;
// line numbers returned are relative to the chunk (line 1 is its first line).
import { parse } from 'csv-parse/sync';
import { generateManageToken } from '../security/tokens.ts';
import { normalizeStudent } from '../domain/registration.ts';
import { RegisterBody } from '../http/schemas/registration.schemas.ts';
import { toFieldErrors, validatorCompiler } from '../http/validation.ts';

export type ColumnIndexes = { name: number; email: number; course: number };

/** The chunk's bytes (UTF-8, decoded here, off the caller's loop) and where each field is. */
export type ChunkTask = { bytes: Uint8Array; columns: ColumnIndexes };

export type ParsedRow = { line: number; course: string; name: string; email: string; emailKey: string; token: string };
export type RowError = { line: number; message: string };
export type ChunkResult = { rows: ParsedRow[]; errors: RowError[]; newlines: number };

const validate = validatorCompiler({ schema: RegisterBody, method: 'POST', url: '/register', httpPart: 'body' }) as ((value: unknown) => boolean) & { errors?: unknown[] | null };

function countNewlines(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count += 1;
  return count;
}

export default function parseCsvChunk(task: ChunkTask): ChunkResult {
  const rows: ParsedRow[] = [];
  const errors: RowError[] = [];
  const text = new TextDecoder('utf-8').decode(task.bytes);
  const records = parse(text, {
    info: true,
    record_delimiter: ['\r\n', '\n'], // CRLF or LF, even mixed in one file
    relax_column_count: true, // a short or long row is judged by its fields, not refused whole
    skip_empty_lines: true,
    trim: true, // spaces around fields (outside quotes) are not data
    skip_records_with_error: true,
    on_skip: (error) => {
      if (error) errors.push({ line: Number((error as { lines?: number }).lines ?? 0), message: `not valid CSV: ${error.message.replace(/^Invalid Record Length: /, '')}` });
      return undefined;
    },
  }) as unknown as { record: string[]; info: { lines: number } }[];
  for (const { record, info } of records) {
    const candidate = { name: record[task.columns.name] ?? '', email: record[task.columns.email] ?? '', course: record[task.columns.course] ?? '' };
    if (!validate(candidate)) {
      const fields = toFieldErrors((validate.errors ?? []) as never, 'body');
      errors.push({ line: info.lines, message: fields.map((f) => `${f.field} ${f.message}`).join('; ') });
      continue;
    }
    const student = normalizeStudent(candidate);
    rows.push({ line: info.lines, course: candidate.course, name: student.name, email: student.email, emailKey: student.emailKey, token: generateManageToken() });
  }
  errors.sort((a, b) => a.line - b.line);
  return { rows, errors, newlines: countNewlines(text) };
}
