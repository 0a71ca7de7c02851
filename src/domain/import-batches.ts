// An import chunk's rows and errors as the batches the writer applies, one transaction each
// (registrar_import_batch): in line order, at most `batchRows` items (rows and errors) a batch,
// those at or before `resumeAfterLine` left out (a resumed import wrote them), each batch's
// rows in course order (the order its course locks are taken in). Made on the thread pool, next
// to the parsing: each column is already the array literal the statement takes, so the job
// worker's event loop only passes a few strings a batch on.
import { integerArrayLiteral, textArrayLiteral } from '../db/array-literal.ts';
import type { ImportBatch, ParsedRow, RowError } from '../db/queries/imports.queries.ts';

export type { ImportBatch };

export type BatchPlan = { batchRows: number; resumeAfterLine: number };

type Item = { line: number; row?: ParsedRow; error?: RowError };

function toBatch(items: readonly Item[]): ImportBatch {
  const rows = items.flatMap((item) => (item.row ? [item.row] : [])).sort((a, b) => (a.course < b.course ? -1 : a.course > b.course ? 1 : 0));
  return {
    rows: rows.length,
    lines: integerArrayLiteral(rows.map((r) => r.line)),
    courses: textArrayLiteral(rows.map((r) => r.course)),
    names: textArrayLiteral(rows.map((r) => r.name)),
    emails: textArrayLiteral(rows.map((r) => r.email)),
    emailKeys: textArrayLiteral(rows.map((r) => r.emailKey)),
    tokens: textArrayLiteral(rows.map((r) => r.token)),
    errors: items.flatMap((item) => (item.error ? [item.error] : [])),
    items: items.length,
    throughLine: items.at(-1)!.line,
  };
}

export function toImportBatches(parsed: { rows: readonly ParsedRow[]; errors: readonly RowError[] }, plan: BatchPlan): ImportBatch[] {
  const items: Item[] = [
    ...parsed.rows.map((row) => ({ line: row.line, row })),
    ...parsed.errors.map((error) => ({ line: error.line, error })),
  ].filter((item) => item.line > plan.resumeAfterLine).sort((a, b) => a.line - b.line);
  const batches: ImportBatch[] = [];
  for (let start = 0; start < items.length; start += plan.batchRows) batches.push(toBatch(items.slice(start, start + plan.batchRows)));
  return batches;
}
