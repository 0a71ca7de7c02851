// The import file's planner and chunk parser, called directly on real files: record boundaries
// whatever the quotes, a badly quoted record reported at its line with the rest kept, the same
// rows and errors however the file is cut, and a lone quote in a large file costing one pass
// (a stray one, and an opening one scanned to the record cap: counted in bytes, not timed).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_MAX_RECORD_BYTES, headerRecord, scanCounter } from '../../src/domain/csv-chunks.ts';
import type { ParsedChunk } from '../../src/domain/import-rows.ts';
import { parseCsvChunk, planChunks } from '../../src/runtime/csv-chunk.thread.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'registrar-csv-chunks-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
async function importFile(text: string | Buffer, chunkBytes = 64, maxRecordBytes = 1024): Promise<ParsedChunk & { chunks: number }> {
  const file = path.join(dir, `f${files++}.csv`);
  await writeFile(file, text);
  const plan = planChunks({ file, chunkBytes, maxRecordBytes });
  if ('failure' in plan) throw new Error(plan.failure);
  const results = plan.chunks.map((chunk) => parseCsvChunk({ ...chunk, file, columns: plan.columns, maxRecordBytes }));
  return { rows: results.flatMap((r) => r.rows), errors: results.flatMap((r) => r.errors), chunks: plan.chunks.length };
}

const lines = (result: ParsedChunk) => ({ rows: result.rows.map((r) => [r.line, r.name]), errors: result.errors.map((e) => e.line) });

test('quoted commas, doubled quotes and newlines, CRLF and a BOM: every row at its line', async () => {
  const csv = '\uFEFFname,email,course,notes\r\n"Hopper, Grace",g@example.org,c-1,\r\n"Said ""hi""",s@example.org,c-1,""\r\nAlan,t@example.org,c-1,"two\nlines, ""quoted"""\r\n  "Spaced"  ,p@example.org,c-1\r\n';
  for (const chunkBytes of [1, 16, 1 << 20]) {
    assert.deepEqual(lines(await importFile(csv, chunkBytes)), { rows: [[2, 'Hopper, Grace'], [3, 'Said "hi"'], [4, 'Alan'], [6, 'Spaced']], errors: [] }, `chunks of ${chunkBytes}`);
  }
});

test('a record spanning lines is reported at the line it starts on: its row, a schema error, a quoting error alike', async () => {
  const csv = [
    'name,email,course,notes',
    'Multi Line,"not-an',
    'email",c-1', // lines 2-3: a schema error
    'Ada,a@example.org,"c-1"',
    'Grace Hopper,g@example.org,c-1,"two',
    '',
    'lines"', // lines 5-7: a good row
    '"Broken',
    'quote" x,b@example.org,c-1', // lines 8-9: a quoting error, at its first line
    'Bob,b@example.org,c-1',
    'Eve,"e@example.org',
    '",c-1', // lines 11-12 at the end of the file, with no newline after it: a schema error
  ].join('\n');
  for (const chunkBytes of [1, 16, 1 << 20]) {
    const result = await importFile(csv, chunkBytes);
    assert.deepEqual(lines(result), { rows: [[4, 'Ada'], [5, 'Grace Hopper'], [10, 'Bob']], errors: [2, 8, 9, 11] }, `chunks of ${chunkBytes}`);
    assert.match(result.errors[0]!.message, /email/);
  }
});

test('a quoted field closed at the very end of the file, after a CR, is a good record', async () => {
  assert.deepEqual(lines(await importFile('name,email,course\r\nAda,a@example.org,"c-1"\r')), { rows: [[2, 'Ada']], errors: [] });
  assert.deepEqual(lines(await importFile('name,email,course\nAda,a@example.org,"c-1"')), { rows: [[2, 'Ada']], errors: [] });
});

test('a quote inside an unquoted field is an error at its line; the next lines go on', async () => {
  const result = await importFile('name,email,course\nAda,a@example.org,c-1\nAnn "Annie" Lee,ann@example.org,c-1\nBob,b@example.org,c-1\n');
  assert.deepEqual(lines(result), { rows: [[2, 'Ada'], [4, 'Bob']], errors: [3] });
  assert.match(result.errors[0]!.message, /quote inside an unquoted field/);
});

test('text after a closing quote is an error at its line', async () => {
  const result = await importFile('name,email,course\n"Ann" Lee,ann@example.org,c-1\nBob,b@example.org,c-1\n');
  assert.deepEqual(lines(result), { rows: [[3, 'Bob']], errors: [2] });
});

test('a quote that opens a field and never closes is an error at its line; every later row is kept', async () => {
  const rows = Array.from({ length: 200 }, (_, i) => `Student ${i},s${i}@example.org,c-1`);
  const csv = ['name,email,course', '"Unclosed,u@example.org,c-1', ...rows].join('\n') + '\n';
  for (const chunkBytes of [100, 1 << 20]) {
    const result = lines(await importFile(csv, chunkBytes, 4096));
    assert.deepEqual(result.errors, [2], `chunks of ${chunkBytes}`);
    assert.deepEqual(result.rows.map(([line]) => line), rows.map((_, i) => i + 3));
  }
  // Closed, much later, by the opening quote of a well-quoted field: still only its own line is lost.
  const closedLater = lines(await importFile(['name,email,course', '"Unclosed,u@example.org,c-1', 'Ada,a@example.org,c-1', '"Hopper, Grace",g@example.org,c-1'].join('\n')));
  assert.deepEqual(closedLater, { rows: [[3, 'Ada'], [4, 'Hopper, Grace']], errors: [2] });
});

test('a record over maxRecordBytes is an error; so is an unclosed quote at the end of the file', async () => {
  const long = `"${'x'.repeat(3000)}\n${'y'.repeat(3000)}",l@example.org,c-1`;
  const result = lines(await importFile(['name,email,course', long, 'Ada,a@example.org,c-1', '"Open at the end'].join('\n'), 64, 1024));
  // Line 2 is refused for its length; reading goes on at line 3, whose quote is then a stray one.
  assert.deepEqual(result, { rows: [[4, 'Ada']], errors: [2, 3, 5] });
});

test('a lone quote in a 4 MiB file: one pass, the row reported, every other row kept', async () => {
  const row = 'Student Name,student@example.org,c-1\n';
  const count = Math.ceil((4 * 1024 * 1024) / row.length);
  const csv = Buffer.from('name,email,course\n"Stray,x@example.org,c-1\n' + row.repeat(count));
  const result = await importFile(csv, 256 * 1024, 1024 * 1024);
  assert.deepEqual(result.errors.map((e) => e.line), [2]);
  assert.equal(result.rows.length, count);
  assert.ok(result.chunks >= 16);
});

test('an opening quote never closed in a 16 MiB file: planned and parsed in one pass each, counted in bytes scanned', async () => {
  // The unclosed quote is scanned up to the 1 MiB record cap, once by the planner and once by its
  // chunk's parser; every other record once by each. Quadratic would be a cap's worth per record.
  const row = 'Student Name,student@example.org,c-1\n';
  const count = Math.ceil((16 * 1024 * 1024) / row.length);
  const csv = Buffer.from('name,email,course\n"Name,x@example.org,c-1\n' + row.repeat(count));
  const before = scanCounter.bytes;
  const result = await importFile(csv, 1024 * 1024, DEFAULT_MAX_RECORD_BYTES);
  const scanned = scanCounter.bytes - before;
  assert.deepEqual(result.errors.map((e) => e.line), [2]);
  assert.match(result.errors[0]!.message, /not closed/);
  assert.equal(result.rows.length, count);
  assert.ok(scanned >= csv.length, `${scanned} bytes scanned: the counter counts`);
  assert.ok(scanned <= 2 * csv.length + 4 * DEFAULT_MAX_RECORD_BYTES, `${scanned} bytes scanned for a file of ${csv.length}`);
});

test('the upload\'s header check: a BOM skipped, a bad quote refused', () => {
  const good = headerRecord(Buffer.from('\uFEFFname,email,course\nx'), 1024);
  assert.deepEqual(good, { from: 3, scan: { end: 21, error: null } });
  assert.notEqual(headerRecord(Buffer.from('name,"email,course\n' + 'a,b,c\n'.repeat(1000)), 1 << 16).scan.error, null);
});
