// A 16 MiB import with one stray quote, through the real pipeline (upload, import_csv job, thread
// pool, batch writer, mailbox): the import ends done with that row's error at its line, and while
// it runs the job worker still sends an unrelated student's email.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newCourse } from '../support/factories.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { until } from '../support/rush.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ uploadMaxBytes: 32 * 1024 * 1024, runners: { importThreads: 2 } }); // the default 1 MiB chunks

test('a 16 MiB file with one stray quote: done, that row reported at its line, other emails flowing meanwhile', { timeout: 900_000 }, async () => {
  const course = await newCourse(stack.server.client, { capacity: 100 });
  const other = await newCourse(stack.server.client, { capacity: 10 });
  // 50 students, then the same 50 again and again (existing: no email each), one stray quote at line 10.
  const header = 'name,email,course\n';
  const rowOf = (i: number) => `Student ${i % 50},student${i % 50}@example.org,${course}\n`;
  const parts = [header];
  let bytes = header.length;
  let rows = 0;
  for (let line = 2; bytes < 16 * 1024 * 1024; line += 1) {
    const text = line === 10 ? `Ann O"Brien,ann@example.org,${course}\n` : rowOf(rows++);
    parts.push(text);
    bytes += text.length;
  }
  const accepted = await stack.server.client.request('POST', '/imports', { raw: parts.join(''), token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'text/csv' } });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  const id = accepted.body.id as string;
  const state = async () => (await stack.server.client.admin('GET', `/imports/${id}`)).body;

  await until(state, (now) => now.status !== 'queued', 'the import starts', 120_000, 200);
  const unrelated = { name: 'Unrelated Student', email: 'unrelated@example.org', course: other };
  assert.equal((await stack.server.client.register(unrelated)).status, 201);
  await until(() => stack.db.sql`SELECT 1 FROM mailbox WHERE recipient = ${unrelated.email}`, (mails) => mails.length > 0, 'the unrelated student\'s email', 120_000, 200);

  // Generous for a shared, slow machine: the bound on the scan itself is csv-chunks.test.ts's
  // count of bytes scanned.
  const result = await until(state, (now) => now.status === 'done' || now.status === 'failed', 'the import ends', 600_000, 200);
  assert.equal(result.status, 'done', result.failure);
  assert.deepEqual({ rows: result.rows, created: result.created, existing: result.existing, rejected: result.rejected }, { rows: rows + 1, created: 50, existing: rows - 50, rejected: 1 });
  assert.equal(result.errors.length, 1);
  assert.equal(result.errors[0].line, 10);
  assert.match(result.errors[0].message, /quote/);
});
