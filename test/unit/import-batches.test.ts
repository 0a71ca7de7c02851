// An import chunk's rows and errors cut into the writer's batches: line order across rows and
// errors, at most batchRows items each, nothing at or before the resume line, each batch's rows
// in a stable sort by course, and the line each batch ends at.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ParsedRow, RowError } from '../../src/db/queries/imports.queries.ts';
import { toImportBatches } from '../../src/domain/import-batches.ts';

const row = (line: number, course: string): ParsedRow => ({ line, course, name: `N${line}`, email: `s${line}@example.org`, emailKey: `s${line}@example.org`, token: `t${line}` });
const error = (line: number): RowError => ({ line, message: `broken ${line}` });

test('batches of at most batchRows items in line order, rows sorted by course within a batch, stably', () => {
  const rows = [row(2, 'c-b'), row(3, 'c-a'), row(5, 'c-b'), row(6, 'c-a'), row(8, 'c-a')];
  const batches = toImportBatches({ rows, errors: [error(4), error(7)] }, { batchRows: 3, resumeAfterLine: 0 });
  assert.deepEqual(batches.map((b) => ({ items: b.items, rows: b.rows, throughLine: b.throughLine, errors: b.errors.map((e) => e.line) })), [
    { items: 3, rows: 2, throughLine: 4, errors: [4] },
    { items: 3, rows: 2, throughLine: 7, errors: [7] },
    { items: 1, rows: 1, throughLine: 8, errors: [] },
  ]);
  assert.equal(batches[0]!.lines, '{3,2}');
  assert.equal(batches[0]!.courses, '{"c-a","c-b"}');
  assert.equal(batches[1]!.lines, '{6,5}');
  assert.equal(batches[1]!.names, '{"N6","N5"}');
  assert.equal(batches[1]!.tokens, '{"t6","t5"}');
});

test('a resumed import leaves out every line at or before the resume point; nothing left, no batch', () => {
  const parsed = { rows: [row(2, 'c'), row(3, 'c'), row(5, 'c')], errors: [error(4)] };
  const batches = toImportBatches(parsed, { batchRows: 10, resumeAfterLine: 3 });
  assert.deepEqual(batches.map((b) => [b.lines, b.errors.map((e) => e.line), b.throughLine]), [['{5}', [4], 5]]);
  assert.deepEqual(toImportBatches(parsed, { batchRows: 10, resumeAfterLine: 5 }), []);
});
