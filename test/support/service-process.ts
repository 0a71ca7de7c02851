// The service as a user runs it: a real process tree (npm or node, the supervisor, its HTTP
// workers, the embedded PostgreSQL), started, probed over real sockets, and stopped by signals;
// the one launcher of the tests and the bench. Every wait here is a poll with a deadline.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { findFreePort } from '../../src/runtime/free-port.ts';

const run = promisify(execFile);

export const REPO_DIR = path.resolve(import.meta.dirname, '../..');
/** Node 24 from the `node` npm package: the one `npm start` runs (npm puts node_modules/.bin first). */
export const NODE_BIN = path.join(REPO_DIR, 'node_modules/.bin/node');

/** Output kept per process: enough to explain a failure, bounded for a chatty process. */
const OUTPUT_LIMIT_CHARS = 200_000;

/** Variables the service reads; a test or the bench sets the ones it means, none leak in from the shell. */
const SERVICE_VARIABLES = [
  'PORT', 'HOST', 'DATA_DIR', 'DATABASE_URL', 'HTTP_DATABASE_URL', 'DATABASE_POOL_SIZE', 'WORKERS', 'ADMIN_TOKEN', 'SMTP_URL',
  'MAIL_FROM', 'PUBLIC_URL', 'EMAIL_CONCURRENCY', 'RATE_LIMIT_PER_MINUTE', 'SHUTDOWN_TIMEOUT_MS', 'LOG_LEVEL',
  'MAX_EVENT_LOOP_DELAY_MS', 'MAX_DATABASE_BACKLOG', 'IMPORT_THREADS', 'IMPORT_MAX_BYTES', 'TRUST_PROXY', 'WEBHOOK_ALLOW_PRIVATE', 'METRICS_TOKEN',
  'WEBHOOK_CONCURRENCY', 'WEBHOOK_TIMEOUT_MS', 'WORKER_LIVENESS_TIMEOUT_MS', 'RETENTION_DAYS', 'NOT_ADMITTED_HOLD_MS',
];

/**
 * Load shedding is under test in overload.test.ts only: elsewhere a busy CI machine must not
 * turn a test's exact expectations into 503s, so its bounds are out of reach unless a test sets them.
 */
const TEST_DEFAULTS: Readonly<Record<string, string>> = { LOG_LEVEL: 'info', MAX_EVENT_LOOP_DELAY_MS: '60000', MAX_DATABASE_BACKLOG: '1000000' };

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export type ServiceProcess = {
  /** What was spawned: npm, or node running src/main.ts (then it is the supervisor itself). */
  readonly child: ChildProcess;
  readonly pid: number;
  /** Settles when the spawned process has exited and its output is closed. */
  readonly exited: Promise<Exit>;
  isRunning(): boolean;
  /** Everything the process tree wrote to stdout and stderr so far (the tail, when long). */
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
};

export type SpawnOptions = {
  /** 'npm': `npm start`, exactly what a user types; 'node': node_modules/.bin/node src/main.ts. */
  via: 'npm' | 'node';
  env: Record<string, string>;
  /** Set before `env`; unset: the tests' (TEST_DEFAULTS). */
  defaults?: Readonly<Record<string, string>>;
};

export function serviceEnv(env: Record<string, string>, defaults: Readonly<Record<string, string>> = TEST_DEFAULTS): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    // The test runner's own variables (NODE_TEST_CONTEXT makes a child report to the runner)
    // and the test database's are not the service's business.
    if (SERVICE_VARIABLES.includes(name) || name.startsWith('NODE_TEST') || name.startsWith('REGISTRAR_') || name === 'NODE_OPTIONS') continue;
    base[name] = value;
  }
  return { ...base, ...defaults, ...env };
}

/**
 * Starts the service in a process group of its own (detached), so that cleanup can reach every
 * process of the tree with one signal to the group. The embedded PostgreSQL is not in the group:
 * pg_ctl gives it a session of its own; stopEmbeddedPostgres() is its cleanup.
 */
export function spawnService(options: SpawnOptions): ServiceProcess {
  const [command, args] = options.via === 'npm' ? ['npm', ['start']] : [NODE_BIN, ['src/main.ts']];
  const child = spawn(command, args, {
    cwd: REPO_DIR,
    env: serviceEnv(options.env, options.defaults),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    if (text.length > OUTPUT_LIMIT_CHARS) text = text.slice(-OUTPUT_LIMIT_CHARS);
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let running = true;
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', (error) => {
      running = false;
      append(Buffer.from(`\n[spawn failed: ${error.message}]\n`));
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => {
      running = false;
      for (const listener of listeners) listener();
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);
  const pid = child.pid;

  return {
    child,
    pid,
    exited,
    isRunning: () => running,
    output: () => text,
    waitForOutput(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (match) return finish(() => resolve(match));
          if (!running) return finish(() => reject(new Error(`the service exited before printing ${pattern}; its output ends with:\n${tail(text)}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no ${pattern} in the output within ${timeoutMs} ms; it ends with:\n${tail(text)}`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

export function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** True while a process with this pid exists (a zombie counts until it is reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type ProcessEntry = { pid: number; ppid: number; commandLine: string };

async function listProcesses(): Promise<ProcessEntry[]> {
  const entries: ProcessEntry[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const commandLine = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      entries.push({ pid: Number(name), ppid, commandLine });
    } catch {
      // gone while we looked
    }
  }
  return entries;
}

/**
 * The supervisor's pid: the spawned process itself when run with node, or, under npm (npm ->
 * sh -c -> node), the shallowest descendant running src/main.ts (its workers run it too, deeper).
 */
export async function findSupervisorPid(service: ServiceProcess, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && service.isRunning()) {
    const processes = await listProcesses();
    let level = [service.pid];
    for (let depth = 0; depth < 6 && level.length > 0; depth++) {
      // node itself, not the `sh -c "node src/main.ts"` that npm runs it through.
      const found = processes.find((p) => level.includes(p.pid) && /^(\S*\/)?node\s(.*\s)?(\S*\/)?src\/main\.ts$/.test(p.commandLine));
      if (found) return found.pid;
      level = processes.filter((p) => level.includes(p.ppid)).map((p) => p.pid);
    }
    await sleep(100);
  }
  throw new Error(`no supervisor process under pid ${service.pid}; output:\n${tail(service.output())}`);
}

export type Health = { status: number; body: { status?: string; pid?: number } | undefined };

/**
 * GET /health on a new connection every time (no keep-alive): the supervisor hands each new
 * connection to the next worker, so repeated calls show every worker's pid.
 */
export function getHealth(baseUrl: string, timeoutMs = 5_000): Promise<Health> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/health`, { agent: false, timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let body: Health['body'];
        try {
          body = JSON.parse(text) as Health['body'];
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET /health took over ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls /health until it answers 200; fails early, with the service's output, if it exits. */
export async function waitForHealth(baseUrl: string, options: { timeoutMs?: number; service?: ServiceProcess } = {}): Promise<Health> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (options.service && !options.service.isRunning()) {
      throw new Error(`the service exited while we waited for ${baseUrl}/health; output:\n${tail(options.service.output())}`);
    }
    try {
      const health = await getHealth(baseUrl);
      if (health.status === 200 && health.body?.status === 'ok') return health;
      last = `${health.status} ${JSON.stringify(health.body)}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(200);
  }
  throw new Error(`${baseUrl}/health did not answer 200 within ${timeoutMs} ms (last: ${last})${options.service ? `; output:\n${tail(options.service.output())}` : ''}`);
}

/** Polls /health until the worker pids seen satisfy `done` (e.g. two distinct pids). */
export async function collectWorkerPids(baseUrl: string, done: (pids: Set<number>) => boolean, timeoutMs = 30_000): Promise<Set<number>> {
  const pids = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const health = await getHealth(baseUrl);
      if (health.status === 200 && typeof health.body?.pid === 'number') pids.add(health.body.pid);
    } catch {
      // a worker being replaced may drop a connection: ask again
    }
    if (done(pids)) return pids;
    await sleep(50);
  }
  throw new Error(`/health at ${baseUrl} showed only pids ${[...pids].join(', ')} within ${timeoutMs} ms`);
}

/**
 * Sends `signal` to one process (the supervisor, or npm) and waits for the spawned process to
 * exit; on timeout, kills the whole group and fails.
 */
export async function stopProcess(service: ServiceProcess, options: { signal?: NodeJS.Signals; pid?: number; timeoutMs?: number } = {}): Promise<Exit> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (service.isRunning()) process.kill(options.pid ?? service.pid, options.signal ?? 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([service.exited, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    killProcessGroup(service);
    throw new Error(`the service did not exit within ${timeoutMs} ms of ${options.signal ?? 'SIGTERM'}; output:\n${tail(service.output())}`);
  }
  return result;
}

/** Cleanup of last resort: SIGKILL to every process of the service's group. */
export function killProcessGroup(service: ServiceProcess | undefined): void {
  if (!service) return;
  try {
    process.kill(-service.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

export { findFreePort as freePort } from '../../src/runtime/free-port.ts';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The pids of postmasters running on this cluster directory (`postgres -D <dataDir>/db`). */
export async function postgresPids(dataDir: string): Promise<number[]> {
  const pattern = `postgres -D ${escapeRegExp(path.join(dataDir, 'db'))}( |$)`;
  try {
    const { stdout } = await run('pgrep', ['-f', pattern]);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch (error) {
    if ((error as { code?: unknown }).code === 1) return []; // pgrep: no process matched
    throw error;
  }
}

/** Waits (bounded) until no postmaster runs on the cluster; returns those still running. */
export async function waitForPostgresGone(dataDir: string, timeoutMs = 30_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let pids = await postgresPids(dataDir);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(200);
    pids = await postgresPids(dataDir);
  }
  return pids;
}

/**
 * Cleanup of last resort for an embedded PostgreSQL whose supervisor died: an immediate
 * shutdown (SIGQUIT to the postmaster, which takes its children with it), then SIGKILL.
 */
export async function stopEmbeddedPostgres(dataDir: string): Promise<void> {
  for (const signal of ['SIGQUIT', 'SIGKILL'] as const) {
    const pids = await postgresPids(dataDir);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone already
      }
    }
    await waitForPostgresGone(dataDir, 10_000);
  }
}

/**
 * The URL of the embedded PostgreSQL of a running service: the password the supervisor keeps in
 * DATA_DIR/db-password, the port from line 4 of the postmaster's pid file.
 */
export async function embeddedDatabaseUrl(dataDir: string): Promise<string> {
  const password = (await readFile(path.join(dataDir, 'db-password'), 'utf8')).trim();
  const pidFile = (await readFile(path.join(dataDir, 'db', 'postmaster.pid'), 'utf8')).split('\n');
  const port = Number(pidFile[3]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port on line 4 of ${dataDir}/db/postmaster.pid`);
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

export type BenchServiceSettings = {
  databaseUrl: string;
  dataDir: string;
  smtpUrl: string;
  workers: number;
  emailConcurrency: number;
  /** More of the service's variables (e.g. IMPORT_THREADS, NODE_OPTIONS), set last. */
  environment?: Readonly<Record<string, string>>;
};

/** A service the bench measures: its address and admin token, and an idempotent stop. */
export type RunningService = {
  readonly baseUrl: string;
  readonly adminToken: string;
  /** The supervisor: the spawned process itself. */
  readonly pid: number;
  output(): string;
  /** SIGTERM, then wait for the exit (SIGKILL to the group after a bound). Idempotent. */
  stop(): Promise<void>;
};

const BENCH_STARTUP_TIMEOUT_MS = 90_000;
const BENCH_STOP_TIMEOUT_MS = 45_000;

/** The bench's own load-shedding bounds, when it was given them (its e2e test puts them out of reach). */
function passThrough(...names: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) values[name] = value;
  }
  return values;
}

/**
 * Starts the service for a bench run (node src/main.ts on a free port, a fresh admin token, the
 * service's own load-shedding bounds, warnings only) and resolves once the supervisor has
 * printed its banner (all HTTP workers listen) and /health is 200. `onSpawned` hears of it
 * first, so an interrupted start is still stopped.
 */
export async function startBenchService(settings: BenchServiceSettings, options: { signal: AbortSignal; onSpawned: (service: RunningService) => void }): Promise<RunningService> {
  options.signal.throwIfAborted();
  const port = await findFreePort();
  const adminToken = randomBytes(24).toString('base64url'); // 32 characters
  const baseUrl = `http://127.0.0.1:${port}`;
  const spawned = spawnService({
    via: 'node',
    defaults: { LOG_LEVEL: 'warn', ...passThrough('MAX_EVENT_LOOP_DELAY_MS', 'MAX_DATABASE_BACKLOG') },
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: settings.dataDir,
      DATABASE_URL: settings.databaseUrl,
      ADMIN_TOKEN: adminToken,
      WORKERS: String(settings.workers),
      SMTP_URL: settings.smtpUrl,
      EMAIL_CONCURRENCY: String(settings.emailConcurrency),
      // Every request comes from the one bench address: the per-client limit is not under test.
      RATE_LIMIT_PER_MINUTE: '0',
      // e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`: the service's processes only, not the bench's.
      ...(process.env.BENCH_SERVICE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVICE_NODE_OPTIONS } : {}),
      ...settings.environment,
    },
  });
  let stopping: Promise<void> | undefined;
  const service: RunningService = {
    baseUrl,
    adminToken,
    pid: spawned.pid,
    output: () => spawned.output(),
    stop() {
      stopping ??= stopProcess(spawned, { timeoutMs: BENCH_STOP_TIMEOUT_MS }).then(() => undefined);
      return stopping;
    },
  };
  options.onSpawned(service);
  const deadline = Date.now() + BENCH_STARTUP_TIMEOUT_MS;
  const healthy = async () => {
    const health = await getHealth(baseUrl).catch(() => undefined);
    return health?.status === 200 && health.body?.status === 'ok';
  };
  try {
    while (!(spawned.output().includes('Registrar is running') && (await healthy()))) {
      options.signal.throwIfAborted();
      if (!spawned.isRunning()) throw new Error(`the service exited during startup; its output ends with:\n${tail(spawned.output(), 30)}`);
      if (Date.now() > deadline) throw new Error(`the service did not answer GET /health within ${BENCH_STARTUP_TIMEOUT_MS} ms; its output ends with:\n${tail(spawned.output(), 30)}`);
      await sleep(100);
    }
  } catch (error) {
    await service.stop().catch(() => undefined);
    throw error;
  }
  return service;
}
