// Owns the service's configuration: read once from the environment, validated, frozen.
// Nothing else in the service reads process.env.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseTrustProxy, type TrustProxy } from './security/trust-proxy.ts';

export type Config = Readonly<{
  host: string;
  port: number;
  dataDir: string;
  /** Unset: an embedded PostgreSQL under dataDir/db, started by the supervisor. */
  databaseUrl: string | undefined;
  /**
   * Where the HTTP workers connect: a PgBouncer in transaction pooling mode in front of
   * databaseUrl (no prepared statements, no session settings). Unset: databaseUrl, directly.
   * The job worker (LISTEN needs a session), migrations and the supervisor use databaseUrl.
   */
  httpDatabaseUrl: string | undefined;
  /** Connections per HTTP worker process; the pool is the bound on concurrent DB work. */
  databasePoolSize: number;
  workers: number;
  /** Unset: generated once and kept in dataDir/admin-token. */
  adminToken: string | undefined;
  smtpUrl: string | undefined;
  mailFrom: string;
  publicUrl: string;
  /** The ceiling of the email send window: SMTP sends in flight per job process (src/jobs/email/send-window.ts). */
  emailConcurrency: number;
  /** Webhook deliveries in flight per job process; apart from email, so a hung receiver never delays mail. */
  webhookConcurrency: number;
  webhookTimeoutMs: number;
  /** Let webhooks reach loopback and private addresses (off: no SSRF into the network). */
  webhookAllowPrivate: boolean;
  rateLimitPerMinute: number;
  /** Behind proxies: how many hops, or which addresses, to believe X-Forwarded-For from. */
  trustProxy: TrustProxy;
  /** Bearer token for /metrics from other machines; unset: /metrics answers loopback only. */
  metricsToken: string | undefined;
  /** Largest import upload accepted, in bytes. */
  importMaxBytes: number;
  /** Threads that parse and validate imports (the worker-thread pool of the job process). */
  importThreads: number;
  /** Load shedding: new requests get 503 when the event loop lags more than this... */
  maxEventLoopDelayMs: number;
  /** ...or when more requests than this wait for a database connection (per worker). */
  maxDatabaseBacklog: number;
  /** POST /register's 403 not-admitted answers wait this long before they are written (0: at once). */
  notAdmittedHoldMs: number;
  /** Mailbox, delivery logs, dead jobs, cancelled registrations' tokens and upload files older than this are removed. */
  retentionDays: number;
  /** How long SIGINT/SIGTERM waits for requests in flight before forcing. */
  shutdownTimeoutMs: number;
  /** A worker not heard from for this long is killed and replaced (0: never). */
  workerLivenessTimeoutMs: number;
  logLevel: string;
  /** Set by the supervisor for the processes it forks; unset in the supervisor itself. */
  processRole: 'http' | 'jobs' | undefined;
}>;

/**
 * EMAIL_CONCURRENCY's default, the send window's ceiling: room for a hundred emails to one slow
 * server at once (SPEC.md's story: 100 students, 2 s per email); the window finds the server's
 * own bound below it.
 */
export const DEFAULT_EMAIL_CONCURRENCY = 128;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
}

function readString(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function readUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = readString(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return raw;
}

function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = readString(env, name);
  if (raw === undefined) return fallback;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new ConfigError(`${name} must be one of ${choices.join(', ')}; got "${raw}"`);
}

function readTrustProxy(env: Env): TrustProxy {
  try {
    return parseTrustProxy(readString(env, 'TRUST_PROXY'));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

function readRole(env: Env): Config['processRole'] {
  const role = readString(env, 'REGISTRAR_ROLE');
  if (role === undefined || role === 'http' || role === 'jobs') return role;
  throw new ConfigError(`REGISTRAR_ROLE is internal (http or jobs); got "${role}"`);
}

export function loadConfig(env: Env = process.env): Config {
  const host = readString(env, 'HOST') ?? '127.0.0.1';
  const port = readInteger(env, 'PORT', 3000, 0, 65535);
  const adminToken = readString(env, 'ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new ConfigError('ADMIN_TOKEN must be at least 16 characters; unset it to have one generated');
  }
  const metricsToken = readString(env, 'METRICS_TOKEN');
  if (metricsToken !== undefined && !/^[A-Za-z0-9\-._~+/]{16,}=*$/.test(metricsToken)) {
    throw new ConfigError('METRICS_TOKEN must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (a bearer token); unset, /metrics answers loopback only');
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const config: Config = {
    host,
    port,
    dataDir: path.resolve(readString(env, 'DATA_DIR') ?? './data'),
    databaseUrl: readUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    httpDatabaseUrl: readUrl(env, 'HTTP_DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: readInteger(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    workers: readInteger(env, 'WORKERS', availableParallelism(), 1, 256),
    adminToken,
    smtpUrl: readUrl(env, 'SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom: readString(env, 'MAIL_FROM') ?? 'Registrar <no-reply@localhost>',
    publicUrl: (readUrl(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `http://${urlHost}:${port}`).replace(/\/+$/, ''),
    emailConcurrency: readInteger(env, 'EMAIL_CONCURRENCY', DEFAULT_EMAIL_CONCURRENCY, 1, 1000),
    webhookConcurrency: readInteger(env, 'WEBHOOK_CONCURRENCY', 8, 1, 1000),
    webhookTimeoutMs: readInteger(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 300_000),
    webhookAllowPrivate: readChoice(env, 'WEBHOOK_ALLOW_PRIVATE', ['true', 'false'] as const, 'false') === 'true',
    importMaxBytes: readInteger(env, 'IMPORT_MAX_BYTES', 256 * 1024 * 1024, 1024, 16 * 1024 * 1024 * 1024),
    importThreads: readInteger(env, 'IMPORT_THREADS', availableParallelism(), 1, 256),
    trustProxy: readTrustProxy(env),
    metricsToken,
    rateLimitPerMinute: readInteger(env, 'RATE_LIMIT_PER_MINUTE', 600, 0, 1_000_000_000),
    maxEventLoopDelayMs: readInteger(env, 'MAX_EVENT_LOOP_DELAY_MS', 500, 10, 60_000),
    maxDatabaseBacklog: readInteger(env, 'MAX_DATABASE_BACKLOG', 250, 1, 1_000_000),
    notAdmittedHoldMs: readInteger(env, 'NOT_ADMITTED_HOLD_MS', 1_000, 0, 60_000),
    retentionDays: readInteger(env, 'RETENTION_DAYS', 180, 1, 36_500),
    shutdownTimeoutMs: readInteger(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    workerLivenessTimeoutMs: readInteger(env, 'WORKER_LIVENESS_TIMEOUT_MS', 10_000, 0, 3_600_000),
    logLevel: readString(env, 'LOG_LEVEL') ?? 'info',
    processRole: readRole(env),
  };
  return Object.freeze(config);
}
