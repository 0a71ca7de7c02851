// Owns the bench's PostgreSQL: one embedded cluster in a temporary directory per bench run, a fresh
// database in it per measured run, the postmaster's pid; stopped and removed by the cleanup.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { startEmbeddedDatabase } from '../src/runtime/embedded-database.ts';
import type { Cleanup } from '../test/support/cleanup.ts';

export type BenchDatabase = {
  /** The temporary directory: the cluster lives in its db/ subdirectory. */
  readonly dir: string;
  /** A new, empty database; the service migrates it when it starts. Returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Drops a database made by createDatabase (its URL), once nothing uses it: frees its disk. */
  dropDatabase(url: string): Promise<void>;
  postmasterPid(): Promise<number>;
};

export async function startBenchDatabase(cleanup: Cleanup, log: (line: string) => void): Promise<BenchDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), 'registrar-bench-'));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  log(`starting an embedded PostgreSQL in ${dir}`);
  // Settings as `npm start` runs them (fsync on): the figures are those of a real start.
  const database = await startEmbeddedDatabase({ dataDir: dir });
  cleanup.add('stop the embedded PostgreSQL', () => database.stop());
  const clusterUrl = database.url;

  return {
    dir,
    async createDatabase(name) {
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a database name: ${name}`);
      const admin = postgres(clusterUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        await admin.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end({ timeout: 5 });
      }
      const url = new URL(clusterUrl);
      url.pathname = `/${name}`;
      return url.href;
    },
    async dropDatabase(databaseUrl) {
      const name = new URL(databaseUrl).pathname.slice(1);
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a database name: ${name}`);
      const admin = postgres(clusterUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end({ timeout: 5 });
      }
    },
    async postmasterPid() {
      // Line 1 of postmaster.pid is the postmaster's pid.
      const text = await readFile(path.join(dir, 'db', 'postmaster.pid'), 'utf8');
      const pid = Number(text.split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid in ${dir}/db/postmaster.pid`);
      return pid;
    },
  };
}
