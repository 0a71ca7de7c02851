// The admin token: ADMIN_TOKEN when set, else generated once and kept in DATA_DIR/admin-token
// (mode 0600), so a restart keeps the same token.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { generateAdminToken } from '../security/tokens.ts';

export async function loadAdminToken(config: Config): Promise<string> {
  if (config.adminToken !== undefined) return config.adminToken;
  const file = path.join(config.dataDir, 'admin-token');
  const existing = await readFile(file, 'utf8').then((text) => text.trim(), () => '');
  if (existing) return existing;
  await mkdir(config.dataDir, { recursive: true });
  const token = generateAdminToken();
  // wx: if two instances race on one data dir, one write fails instead of both tokens differing.
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' }).catch(async () => undefined);
  return (await readFile(file, 'utf8')).trim();
}
