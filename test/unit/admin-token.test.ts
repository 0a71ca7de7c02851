// The generated admin token: made once, kept (mode 0600), the same for every caller, and never
// left empty by a crash; ADMIN_TOKEN wins over the file.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { loadAdminToken } from '../../src/runtime/admin-token.ts';

async function withDataDir(run: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-token-'));
  try {
    await run(dataDir);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

test('a token is generated once, kept in DATA_DIR/admin-token (0600), and every later load gets it', () => withDataDir(async (dataDir) => {
  const config = loadConfig({ DATA_DIR: dataDir });
  const token = await loadAdminToken(config);
  assert.ok(token.length >= 32, token);
  const file = path.join(dataDir, 'admin-token');
  assert.equal((await readFile(file, 'utf8')).trim(), token);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal(await loadAdminToken(config), token);
  assert.equal(await loadAdminToken(loadConfig({ DATA_DIR: dataDir, ADMIN_TOKEN: 'set-by-the-operator-0123' })), 'set-by-the-operator-0123');
}));

test('loads racing on a new data dir all get the same token', () => withDataDir(async (dataDir) => {
  const config = loadConfig({ DATA_DIR: dataDir });
  const tokens = await Promise.all(Array.from({ length: 8 }, () => loadAdminToken(config)));
  assert.equal(new Set(tokens).size, 1, tokens.join(' '));
}));

test('an empty token file (a crash between creating and writing it) is replaced by a new token', () => withDataDir(async (dataDir) => {
  await writeFile(path.join(dataDir, 'admin-token'), '\n');
  const token = await loadAdminToken(loadConfig({ DATA_DIR: dataDir }));
  assert.ok(token.length >= 32);
  assert.equal((await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim(), token);
}));
