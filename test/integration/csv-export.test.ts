// The CSV export: every registration of a course, streamed, and safe to open in a spreadsheet
// (a cell that starts with = + - @ is escaped, so it stays text and never runs as a formula).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { newCourse, student } from '../support/factories.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack();

test('formula-like names are escaped; quotes, commas and every row survive the round trip', async () => {
  const course = await newCourse(stack.server.client, { capacity: 1000 });
  const names = ['=HYPERLINK("http://evil.example","click")', '+1+1', '-2+3', '@SUM(A1)', 'Plain, "Quoted" Name'];
  for (const [i, name] of names.entries()) assert.equal((await stack.server.client.register({ ...student(course, i), name })).status, 201);
  await Promise.all(Array.from({ length: 600 }, (_, i) => stack.server.client.register(student(course, i, 'bulk'))));
  const answer = await stack.server.client.admin('GET', `/courses/${course}/registrations.csv`);
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get('content-type') ?? '', /text\/csv/);
  const rows = parse(answer.body as string, { columns: true }) as { name: string; email: string; status: string }[];
  assert.equal(rows.length, 605);
  assert.deepEqual(rows.slice(0, 5).map((r) => r.name), ["'=HYPERLINK(\"http://evil.example\",\"click\")", "'+1+1", "'-2+3", "'@SUM(A1)", 'Plain, "Quoted" Name']);
  const waitlisted = await stack.server.client.admin('GET', `/courses/${course}/registrations.csv?status=waitlisted`);
  assert.equal((parse(waitlisted.body as string, { columns: true }) as unknown[]).length, 0);
});
