// The header line of an import file: columns are found by name (case and surrounding spaces
// ignored, any order, extra columns allowed); name, email and course are required.
import { parse } from 'csv-parse/sync';
import { ImportFileError } from './csv-chunks.ts';
import type { ColumnIndexes } from './import-rows.ts';

const REQUIRED = ['name', 'email', 'course'] as const;

export function readHeader(line: string): ColumnIndexes {
  let fields: string[];
  try {
    fields = (parse(line, { trim: true, bom: true }) as string[][])[0] ?? [];
  } catch (error) {
    throw new ImportFileError(`line 1 is not a CSV header: ${(error as Error).message}`);
  }
  const names = fields.map((field) => field.toLowerCase());
  const missing = REQUIRED.filter((column) => !names.includes(column));
  if (missing.length > 0) {
    throw new ImportFileError(`line 1 must be a header with the columns name,email,course; missing ${missing.join(', ')}`);
  }
  return { name: names.indexOf('name'), email: names.indexOf('email'), course: names.indexOf('course') };
}
