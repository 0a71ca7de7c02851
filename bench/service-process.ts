// Owns the service under test as a real process tree (`node src/main.ts`: supervisor, HTTP workers, job
// worker): spawned with the bench's settings, awaited on GET /health, stopped with SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { findFreePort } from '../src/runtime/free-port.ts';

export const REPO_DIR = path.resolve(import.meta.dirname, '..');
/** Node 24 from the `node` npm package, the one `npm start` runs. */
export const NODE_BIN = path.join(REPO_DIR, 'node_modules/.bin/node');

const STARTUP_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 45_000;
const OUTPUT_LIMIT_CHARS = 100_000;

/** What the service reads from its environment; none of it leaks in from the bench's shell. */
const SERVICE_VARIABLES = /^(PORT|HOST|DATA_DIR|DATABASE_URL|DATABASE_POOL_SIZE|WORKERS|ADMIN_TOKEN|SMTP_URL|MAIL_FROM|PUBLIC_URL|EMAIL_CONCURRENCY|WEBHOOK_CONCURRENCY|WEBHOOK_TIMEOUT_MS|RATE_LIMIT_PER_MINUTE|IMPORT_THREADS|IMPORT_MAX_BYTES|SHUTDOWN_TIMEOUT_MS|LOG_LEVEL|NODE_OPTIONS|REGISTRAR_.*|NODE_TEST.*)$/;

export type ServiceSettings = {
  databaseUrl: string;
  dataDir: string;
  smtpUrl: string;
  workers: number;
  emailConcurrency: number;
  /** More of the service's variables (e.g. IMPORT_THREADS), set last. */
  environment?: Readonly<Record<string, string>>;
};

export type ServiceProcess = {
  readonly baseUrl: string;
  readonly adminToken: string;
  /** The supervisor: the spawned process itself. */
  readonly pid: number;
  output(): string;
  /** SIGTERM, then wait for the exit (SIGKILL to the group after a bound). Idempotent. */
  stop(): Promise<void>;
};

function serviceEnvironment(settings: ServiceSettings, port: number, adminToken: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!SERVICE_VARIABLES.test(name)) env[name] = value;
  return {
    ...env,
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
    // The service's load-shedding bounds, when given to the bench itself (its e2e test puts them
    // out of reach, so a busy CI machine cannot turn the exact counts it checks into 503s).
    ...passThrough('MAX_EVENT_LOOP_DELAY_MS', 'MAX_DATABASE_BACKLOG'),
    LOG_LEVEL: 'warn',
    ...settings.environment,
  };
}

function passThrough(...names: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) values[name] = value;
  }
  return values;
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

async function healthy(baseUrl: string): Promise<boolean> {
  try {
    const answer = await request(`${baseUrl}/health`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
    const body = await answer.body.text();
    return answer.statusCode === 200 && body.includes('"ok"');
  } catch {
    return false;
  }
}

/**
 * Spawns the supervisor in a process group of its own (so a last-resort SIGKILL reaches its
 * workers too, and a Ctrl-C on the bench's terminal does not: the bench stops it in order).
 * Resolves once the supervisor has printed its banner (all HTTP workers listen) and /health is 200.
 */
export async function startServiceProcess(settings: ServiceSettings, options: { signal: AbortSignal; onSpawned: (service: ServiceProcess) => void }): Promise<ServiceProcess> {
  options.signal.throwIfAborted();
  const port = await findFreePort();
  const adminToken = randomBytes(24).toString('base64url'); // 32 characters
  const baseUrl = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(NODE_BIN, ['src/main.ts'], {
    cwd: REPO_DIR,
    env: serviceEnvironment(settings, port, adminToken),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT_CHARS) output = output.slice(-OUTPUT_LIMIT_CHARS);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      append(Buffer.from(`\n[spawn failed: ${error.message}]\n`));
      running = false;
      resolve();
    });
    child.once('close', () => {
      running = false;
      resolve();
    });
  });
  const pid = child.pid;
  if (pid === undefined) {
    await exited;
    throw new Error(`could not start ${NODE_BIN} src/main.ts: ${output.trim()}`);
  }

  const killGroup = () => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  };
  let stopping: Promise<void> | undefined;
  const service: ServiceProcess = {
    baseUrl,
    adminToken,
    pid,
    output: () => output,
    stop() {
      stopping ??= (async () => {
        if (running) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // exited meanwhile
          }
        }
        const result = await Promise.race([exited.then(() => 'exited' as const), sleep(STOP_TIMEOUT_MS, 'timeout' as const)]);
        if (result === 'timeout') {
          killGroup();
          await Promise.race([exited, sleep(5_000)]);
          throw new Error(`the service did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM; killed its process group`);
        }
      })();
      return stopping;
    },
  };

  options.onSpawned(service);
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  try {
    while (!(output.includes('Registrar is running') && (await healthy(baseUrl)))) {
      options.signal.throwIfAborted();
      if (!running) throw new Error(`the service exited during startup; its output ends with:\n${tail(output)}`);
      if (Date.now() > deadline) throw new Error(`the service did not answer GET /health within ${STARTUP_TIMEOUT_MS} ms; its output ends with:\n${tail(output)}`);
      await sleep(100);
    }
  } catch (error) {
    await service.stop().catch(() => undefined);
    throw error;
  }
  return service;
}
