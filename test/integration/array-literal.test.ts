// The array literals an import's batches carry (built on the thread pool, cast by the statement):
// PostgreSQL reads back exactly the values they were made of, whatever characters a name holds.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { integerArrayLiteral, textArrayLiteral } from '../../src/db/array-literal.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase(1);
});
after(() => db.drop());

const awkward = [
  'Hopper, Grace', 'Said "hi"', 'back\\slash', '\\"', '{braces}', 'NULL', 'null', '', ' spaced ', 'two\nlines',
  'Ådå Lövelace', '学生', '🎓', 'a,b,"c"', '\\', '"', '}', '{', '\t', "O'Brien",
];

test('text: every value read back as it was, in order, special characters and the word NULL included', async () => {
  const [row] = await db.sql<{ values: string[] }[]>`SELECT ${textArrayLiteral(awkward)}::text[] AS values`;
  assert.deepEqual(row!.values, awkward);
  const [empty] = await db.sql<{ n: number }[]>`SELECT cardinality(${textArrayLiteral([])}::text[]) AS n`;
  assert.equal(empty!.n, 0);
});

test('integers: read back as they were; a value that is not a safe integer is refused before it is sent', async () => {
  const values = [2, 3, 1_000_000, 2_147_483_647];
  const [row] = await db.sql<{ values: number[] }[]>`SELECT ${integerArrayLiteral(values)}::int[] AS values`;
  assert.deepEqual(row!.values, values);
  assert.throws(() => integerArrayLiteral([1, 2.5]), RangeError);
  assert.throws(() => integerArrayLiteral([Number.NaN]), RangeError);
});
