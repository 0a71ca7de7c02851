// A PgBouncer in transaction pooling mode in front of a test database (Debian's pgbouncer, run
// as a real process on loopback), configured like the README's example, and its admin console.
import { type ChildProcess, spawn } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { exists, postgresUserIds } from '../../src/runtime/postgres-tools.ts';
import { freePort, tail } from './service-process.ts';

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];
const START_TIMEOUT_MS = 15_000;

export type Pgbouncer = {
  /** The database through the pooler: same user, password and database name as the server's. */
  url: string;
  /** Its admin console's answer to a SHOW command (SHOW POOLS, SHOW STATS, ...). */
  show(what: string): Promise<Record<string, unknown>[]>;
  output(): string;
  stop(): Promise<void>;
};

/** Where Debian puts pgbouncer (`apt-get install pgbouncer`); undefined when it is not installed. */
export async function findPgbouncer(): Promise<string | undefined> {
  for (const file of CANDIDATES) if (await exists(file)) return file;
  return undefined;
}

/**
 * Starts `binary` in front of the database at `serverUrl`, with at most `poolSize` server
 * connections for any number of clients. PgBouncer refuses to run as root: as root it runs as
 * the `postgres` user, like the embedded PostgreSQL.
 */
export async function startPgbouncer(binary: string, serverUrl: string, options: { poolSize: number }): Promise<Pgbouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const database = server.pathname.slice(1);
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'registrar-pgbouncer-'));
  const quoted = (value: string) => `"${value.replaceAll('"', '""')}"`;
  await writeFile(path.join(dir, 'userlist.txt'), `${quoted(user)} ${quoted(password)}\n`, { mode: 0o600 });
  await writeFile(path.join(dir, 'pgbouncer.ini'), [
    '[databases]',
    // The HTTP workers' planning setting cannot ride their startup packet through PgBouncer:
    // each server connection gets it once, when PgBouncer opens it.
    `${database} = host=${server.hostname} port=${server.port} dbname=${database} connect_query='SET plan_cache_mode = force_custom_plan'`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `admin_users = ${user}`,
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize}`,
    'max_client_conn = 1000',
    '',
  ].join('\n'));
  const ids = await postgresUserIds();
  if (ids.uid !== undefined && ids.gid !== undefined) {
    await chown(dir, ids.uid, ids.gid);
    for (const file of ['userlist.txt', 'pgbouncer.ini']) await chown(path.join(dir, file), ids.uid, ids.gid);
  }

  let text = '';
  const child: ChildProcess = spawn(binary, [path.join(dir, 'pgbouncer.ini')], { uid: ids.uid, gid: ids.gid, stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (chunk: Buffer) => (text = (text + chunk.toString('utf8')).slice(-100_000));
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));

  const url = new URL(serverUrl);
  url.host = `127.0.0.1:${port}`;
  const consoleUrl = new URL(url.href);
  consoleUrl.pathname = '/pgbouncer';
  // The admin console speaks the simple query protocol only, and has no types to fetch.
  const adminConsole = postgres(consoleUrl.href, { max: 1, fetch_types: false, onnotice: () => {} });
  const show = async (what: string) => [...await adminConsole.unsafe(`SHOW ${what}`).simple()] as Record<string, unknown>[];

  const stop = async () => {
    await adminConsole.end({ timeout: 5 }).catch(() => {});
    if (running) child.kill('SIGTERM'); // 1.18: an immediate shutdown (SIGINT would wait for its clients)
    await Promise.race([exited, sleep(10_000)]);
    if (running) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      await show('VERSION');
      break;
    } catch (error) {
      if (!running || Date.now() > deadline) {
        await stop();
        throw new Error(`pgbouncer did not start: ${String(error)}; its output ends with:\n${tail(text)}`);
      }
      await sleep(100);
    }
  }
  return { url: url.href, show, output: () => text, stop };
}
