// `npm test`'s OpenAPI step: builds the app as the service does (its database client is made but
// never connects: building the routes runs no query), writes app.swagger() to a temporary file
// and lints it with Redocly's recommended rules and the repository's redocly.yaml.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDatabase } from '../../src/db/database.ts';
import { buildServer } from '../../src/http/server.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The document exactly as GET /openapi.json serves it with PUBLIC_URL unset. */
export async function openApiDocument(): Promise<unknown> {
  const sql = connectDatabase('postgres://127.0.0.1:1/unused', { max: 1, applicationName: 'registrar-openapi-lint' });
  const app = await buildServer({ sql, adminToken: 'openapi-lint-token-0123456789abcdef', logger: false });
  try {
    return app.swagger();
  } finally {
    await app.close();
    await sql.end();
  }
}

async function lint(): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), 'registrar-openapi-'));
  try {
    const file = path.join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(await openApiDocument(), null, 2));
    const cli = fileURLToPath(import.meta.resolve('@redocly/cli/bin/cli.js'));
    const child = spawn(process.execPath, [cli, 'lint', '--config', path.join(root, 'redocly.yaml'), '--format', 'codeframe', file], {
      stdio: 'inherit',
      // No usage reports and no update check from a test run.
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    });
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) process.exitCode = await lint();
