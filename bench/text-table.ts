// Owns the plain-text tables printed to stdout: columns padded to their widest cell, numbers
// right-aligned.

export type TextTable = { title?: string; headers: readonly string[]; rows: readonly (readonly string[])[] };

const NUMERIC = /^[-+]?[\d.,]+\s*(ms|s|%|\/s|x)?$/;

export function formatTable(table: TextTable): string {
  const widths = table.headers.map((header, column) => Math.max(header.length, ...table.rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) => cells
    .map((cell, column) => (NUMERIC.test(cell) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
    .join('  ')
    .trimEnd();
  const out: string[] = [];
  if (table.title) out.push(table.title);
  out.push(line(table.headers), widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of table.rows) out.push(line(table.headers.map((_, column) => row[column] ?? '')));
  return out.join('\n');
}
