// Uploaded import files: readable by the service's user alone (0600 files in a 0700 directory,
// a looser directory made earlier tightened), kept while the import may still need them, and
// deleted once it ends, done or failed.
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { newCourse } from '../support/factories.ts';
import { TEST_ADMIN_TOKEN } from '../support/http.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ uploadMaxBytes: 1024 * 1024 });

async function upload(csv: string): Promise<string> {
  const answer = await stack.server.client.request('POST', '/imports', { raw: csv, token: TEST_ADMIN_TOKEN, headers: { 'content-type': 'text/csv' } });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  return answer.body.id;
}

async function ended(id: string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const state = (await stack.server.client.admin('GET', `/imports/${id}`)).body;
    if (state.status === 'done' || state.status === 'failed') return state;
    assert.ok(Date.now() < deadline, `import still ${state.status} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const mode = async (file: string) => (await stat(file)).mode & 0o777;

test('upload files are 0600 in a 0700 directory, and deleted when their import is done or has failed', async () => {
  const uploads = path.join(stack.dataDir, 'uploads');
  await mkdir(uploads, { recursive: true });
  await chmod(uploads, 0o755); // as an earlier version, or a umask of 022, left it
  const course = await newCourse(stack.server.client, { capacity: 10 });
  // No job runner yet: both imports wait, queued, with their files.
  const good = await upload(`name,email,course\nAda Lovelace,ada@example.org,${course}\nAlan Turing,alan@example.org,${course}\n`);
  const bad = await upload(`name,email,course\nGrace Hopper,grace@example.org,${course}\n`);
  assert.equal(await mode(uploads), 0o700);
  assert.equal(await mode(path.join(uploads, `${good}.csv`)), 0o600);
  assert.equal(await mode(path.join(uploads, `${bad}.csv`)), 0o600);
  assert.deepEqual((await readdir(uploads)).sort(), [`${good}.csv`, `${bad}.csv`].sort());

  // The second file loses its content before its import runs: that import fails (an empty file).
  await writeFile(path.join(uploads, `${bad}.csv`), '');
  await stack.startRunners({ importThreads: 1 });
  const done = await ended(good);
  const failed = await ended(bad);
  assert.equal(done.status, 'done', done.failure);
  assert.equal(done.created, 2);
  assert.equal(failed.status, 'failed');
  assert.match(failed.failure, /empty/);
  // Deleted just after the status is committed: wait for it, within a generous deadline.
  const deadline = Date.now() + 30_000;
  while ((await readdir(uploads)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await readdir(uploads), [], 'an ended import leaves no file behind');
});
