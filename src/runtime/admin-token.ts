// The admin token: ADMIN_TOKEN when set, else generated once and kept in DATA_DIR/admin-token
// (mode 0600), so a restart keeps the same token.
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config.ts';
import { generateAdminToken } from '../security/tokens.ts';

/** The shortest token accepted (as for ADMIN_TOKEN): anything shorter in the file is damage. */
const MIN_TOKEN_LENGTH = 16;

export async function loadAdminToken(config: Config): Promise<string> {
  if (config.adminToken !== undefined) return config.adminToken;
  const file = path.join(config.dataDir, 'admin-token');
  const existing = await readFile(file, 'utf8').then((text) => text.trim(), () => undefined);
  if (existing !== undefined && existing.length >= MIN_TOKEN_LENGTH) return existing;
  await mkdir(config.dataDir, { recursive: true });
  // The token is written whole to a file of its own first, then put in place in one step: a
  // process killed meanwhile never leaves an empty or half-written token behind.
  const draft = `${file}.${randomUUID()}.draft`;
  await writeFile(draft, `${generateAdminToken()}\n`, { mode: 0o600 });
  try {
    if (existing === undefined) {
      // link fails if the file exists: of two instances racing on one data dir, the first wins
      // and both use its token.
      await link(draft, file).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'EEXIST') throw error; });
    } else {
      await rename(draft, file); // an empty or too short file (a hand edit, a truncated copy) is replaced
    }
  } finally {
    await rm(draft, { force: true });
  }
  const stored = (await readFile(file, 'utf8')).trim();
  if (stored.length < MIN_TOKEN_LENGTH) throw new Error(`${file} holds no usable admin token: delete it to have one generated, or set ADMIN_TOKEN`);
  return stored;
}
