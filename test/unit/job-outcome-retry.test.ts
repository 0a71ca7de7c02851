// graphile-worker's retry table for its job-outcome writes, as the job runners patch it: every
// SQLSTATE of a database short of resources (HTTP's 503s) is retried there too, and the
// graphile-worker installed is the exact version package.json pins (the table is internal).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { RETRYABLE_ERROR_CODES } from 'graphile-worker/dist/lib.js';
import { OUT_OF_RESOURCES_CODES } from '../../src/db/postgres-errors.ts';
import '../../src/jobs/job-runners.ts';

test('a job outcome refused for a database short of resources is retried, 58030 (an I/O error from ENOSPC) too', () => {
  const missing = [...OUT_OF_RESOURCES_CODES].filter((code) => RETRYABLE_ERROR_CODES[code] === undefined);
  assert.deepEqual(missing, []);
  assert.ok(RETRYABLE_ERROR_CODES['58030']);
});

test('graphile-worker is pinned to the version whose internal table is patched', async () => {
  const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  const { version } = createRequire(import.meta.url)('graphile-worker/package.json') as { version: string };
  assert.equal(manifest.dependencies['graphile-worker'], version);
});
