// PostgreSQL's text form of a one-dimensional array, as array_in reads it: what a statement's
// parameter cast to text[] or integer[] takes. Built where the values are made (a thread of the
// pool, for an import's batches), so the event loop hands the database one string per column
// instead of turning thousands of values into parameters itself.

/** Every element double-quoted, its backslashes and double quotes escaped: any text is safe. */
export function textArrayLiteral(values: readonly string[]): string {
  if (values.length === 0) return '{}';
  const escaped = values.map((value) => (value.includes('"') || value.includes('\\') ? value.replace(/[\\"]/g, '\\$&') : value));
  return `{"${escaped.join('","')}"}`;
}

export function integerArrayLiteral(values: readonly number[]): string {
  for (const value of values) if (!Number.isSafeInteger(value)) throw new RangeError(`not an integer: ${value}`);
  return `{${values.join(',')}}`;
}
