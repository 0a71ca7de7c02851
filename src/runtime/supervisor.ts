// The supervisor (node:cluster primary), the only process that forks. It starts the embedded
// PostgreSQL (unless DATABASE_URL is set), applies migrations once, forks the HTTP workers and
// replaces any that die or stop answering (liveness), with exponential backoff so a crash loop
// does not spin. On SIGINT or SIGTERM, at any point of start-up too, it drains the workers, then
// stops the database; a second signal kills the workers and shuts PostgreSQL down immediately.
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { runnerPoolSize } from '../jobs/job-runners.ts';
import { serveClusterMetrics } from '../observability/cluster-metrics.ts';
import { ClusterStateHub, runClusterStateHub } from '../observability/cluster-state.ts';
import { createLogger } from '../observability/logger.ts';
import { loadAdminToken } from './admin-token.ts';
import { embeddedDatabase } from './embedded-database.ts';
import { type WorkerMessage, type WorkerReport } from './http-worker.ts';
import { jobWorkerPoolSize } from './job-worker.ts';
import { Lifecycle } from './lifecycle.ts';
import { superviseLiveness } from './liveness.ts';
import { countCrashes, restartDelayMs } from './restart-backoff.ts';

/** The supervisor's own connections (migrations, health) and room for an operator's psql. */
const CONNECTIONS_HEADROOM = 20;

/**
 * Connections one instance opens at most: each HTTP worker's pool, and the job worker's pool
 * (jobWorkerPoolSize) plus graphile-worker's pool per runner (email, webhooks: runnerPoolSize;
 * imports: 3). The embedded PostgreSQL is sized for it, so no core count makes a rush meet "too
 * many connections"; never below 300, its max_connections otherwise (embedded-database.ts).
 */
export function connectionsNeeded(config: Config): number {
  const jobWorker = jobWorkerPoolSize(config) + runnerPoolSize(config.emailConcurrency) + runnerPoolSize(config.webhookConcurrency) + 3;
  return Math.max(300, config.workers * config.databasePoolSize + jobWorker + CONNECTIONS_HEADROOM);
}

type Slot = {
  role: 'http' | 'jobs';
  index: number;
  worker: Worker | undefined;
  startedAt: number;
  crashes: number;
  /** Set when the liveness check killed the worker: why, for the log and the dashboard. */
  killedFor: string | undefined;
};

export async function runSupervisor(config: Config): Promise<void> {
  const logger = createLogger(config, 'supervisor');
  const lifecycle = new Lifecycle((message) => logger.info(message));
  lifecycle.handleSignals(config.shutdownTimeoutMs + 5_000);
  // A step a stop cut short can still fail where nobody awaits it: postgres.js rejects a promise
  // of its own when it ends a connection whose server just went away (the migration's, as the
  // embedded PostgreSQL stops). Once the stop has begun that is its expected fallout, logged;
  // before it, the crash Node would make without this handler.
  process.on('unhandledRejection', (reason) => {
    if (!lifecycle.isStopping) throw reason;
    logger.warn({ err: reason }, 'a step cut short by the stop failed afterwards; the stop goes on');
  });
  try {
    await startAll(config, logger, lifecycle);
  } catch (error) {
    // A signal during start-up: its stop undoes what started and exits; the step it cut short
    // failing (a migration whose database went away) is part of that, not an error to report.
    if (lifecycle.isStopping) return;
    // Whatever started (the embedded database above all) must not outlive a failed start.
    await lifecycle.stop(config.shutdownTimeoutMs);
    throw error;
  }
}

async function startAll(config: Config, logger: Logger, lifecycle: Lifecycle): Promise<void> {

  // Every step is awaited through lifecycle.untilStopped: a signal ends start-up at once, and the
  // stop undoes what the steps before started. Each cleanup is registered before its step runs.
  let databaseUrl = config.databaseUrl;
  let databaseLabel = `external PostgreSQL (DATABASE_URL${config.httpDatabaseUrl === undefined ? '' : '; HTTP workers through HTTP_DATABASE_URL'})`;
  if (databaseUrl === undefined) {
    const database = embeddedDatabase({
      dataDir: config.dataDir,
      log: (line) => logger.info(line),
      settings: { max_connections: String(connectionsNeeded(config)) },
    });
    // Its stop waits for a start under way, then stops the postmaster: nothing is left behind.
    // pg_ctl start may take longer than the stop's bound (crash recovery): past it, forceStop.
    lifecycle.add('embedded PostgreSQL', () => database.stop(), () => database.forceStop());
    lifecycle.onForce(() => database.forceStop());
    databaseUrl = await lifecycle.untilStopped(database.start());
    databaseLabel = `embedded PostgreSQL in ${config.dataDir}/db`;
  }
  const applied = await lifecycle.untilStopped(migrateDatabase(databaseUrl));
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  const adminToken = await lifecycle.untilStopped(loadAdminToken(config));

  const workerEnv = { DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken };
  // WORKERS HTTP workers, and one job worker for email and webhooks.
  const slots: Slot[] = [
    ...Array.from({ length: config.workers }, (_, index): Slot => ({ role: 'http', index, worker: undefined, startedAt: 0, crashes: 0, killedFor: undefined })),
    { role: 'jobs', index: 0, worker: undefined, startedAt: 0, crashes: 0, killedFor: undefined },
  ];
  // A forced exit (a second signal) takes the workers along: none outlives the supervisor.
  lifecycle.onForce(() => {
    for (const slot of slots) if (slot.worker && !slot.worker.isDead()) slot.worker.process.kill('SIGKILL');
  });

  // /metrics and the dashboard's lanes: gathered here, from every worker.
  serveClusterMetrics();
  const hub = new ClusterStateHub();
  const stopHub = runClusterStateHub(hub);
  lifecycle.add('cluster state', async () => stopHub());

  // Liveness: a worker whose event loop stopped sends nothing; past the bound it is killed, and
  // its 'exit' below replaces it like any other death (with the same backoff).
  // A runnable or CPU-using worker gets longer (liveness.ts: BUSY_BOUND_FACTOR); half-way, a warning.
  const liveness = superviseLiveness(config.workerLivenessTimeoutMs, (pid, silentMs, state) => {
    const slot = slots.find((s) => s.worker?.process.pid === pid);
    if (lifecycle.isStopping || !slot?.worker || slot.worker.isDead()) return;
    slot.killedFor = `unresponsive for ${Math.round(silentMs / 1000)} s: killed`;
    logger.error({ role: slot.role, slot: slot.index, pid, silentMs, state }, `worker ${pid} sent nothing for ${silentMs} ms (its event loop is stuck or it is stopped): killing it`);
    slot.worker.process.kill('SIGKILL');
  }, (pid, silentMs, state) => {
    const slot = slots.find((s) => s.worker?.process.pid === pid);
    if (lifecycle.isStopping || !slot?.worker || slot.worker.isDead()) return;
    logger.warn({ role: slot.role, slot: slot.index, pid, silentMs, state }, `worker ${pid} sent nothing for ${silentMs} ms (stuck, stopped or starved of CPU)`);
  });
  lifecycle.add('liveness check', async () => liveness.stop());

  const fork = (slot: Slot) => {
    if (lifecycle.isStopping) return;
    slot.startedAt = Date.now();
    slot.killedFor = undefined;
    const worker = cluster.fork({ ...workerEnv, REGISTRAR_ROLE: slot.role });
    slot.worker = worker;
    if (worker.process.pid) liveness.watch(worker.process.pid);
    worker.once('online', () => worker.process.pid && hub.recordStart(worker.process.pid, slot.role));
    worker.on('exit', (code, signal) => {
      slot.worker = undefined;
      if (worker.process.pid) liveness.forget(worker.process.pid);
      if (lifecycle.isStopping) return;
      const reason = slot.killedFor;
      if (worker.process.pid) hub.recordExit(worker.process.pid, slot.role, code, signal, reason);
      const uptimeMs = Date.now() - slot.startedAt;
      slot.crashes = countCrashes(slot.crashes, uptimeMs);
      const delayMs = restartDelayMs(slot.crashes);
      logger.warn({ role: slot.role, slot: slot.index, pid: worker.process.pid, code, signal, reason, uptimeMs, restartInMs: delayMs }, 'worker died; replacing it');
      setTimeout(() => {
        if (!lifecycle.isStopping) fork(slot);
      }, delayMs).unref();
    });
  };

  // Workers stop first (registered last): they drain their requests while the database is up;
  // the job worker after the HTTP workers, so jobs queued by the last requests still start.
  lifecycle.add('job worker', () => stopWorkers(slots.filter((slot) => slot.role === 'jobs'), config.shutdownTimeoutMs));
  lifecycle.add('HTTP workers', () => stopWorkers(slots.filter((slot) => slot.role === 'http'), config.shutdownTimeoutMs));

  // Each HTTP worker says when it listens (with SO_REUSEPORT the primary sees no 'listening').
  const listening = new Promise<{ port: number }>((resolve) => {
    let count = 0;
    cluster.on('message', function onListening(_worker, message: WorkerReport) {
      if (message?.type !== 'listening') return;
      count += 1;
      if (count === config.workers) {
        cluster.off('message', onListening);
        resolve({ port: message.port });
      }
    });
  });
  if (config.port !== 0) await lifecycle.untilStopped(assertPortFree(config.host, config.port));
  for (const slot of slots) fork(slot);
  const address = await lifecycle.untilStopped(listening);
  printBanner(config, address.port, databaseLabel, adminToken);
}

/**
 * The workers bind with SO_REUSEPORT, which would let a second instance on the same port join
 * in silently; a plain bind first makes a port already in use an error, as users expect.
 */
async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${port} on ${host} is already in use (another Registrar?); set PORT to a free port`, { cause: error }) : error);
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

async function stopWorkers(slots: Slot[], timeoutMs: number): Promise<void> {
  await Promise.all(slots.map(async (slot) => {
    const worker = slot.worker;
    if (!worker || worker.isDead()) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    // The message starts a ready worker's drain. A worker still starting may not listen for it
    // yet; SIGTERM reaches it either way: its handler drains, and before the handler exists the
    // default action ends a process that has nothing in flight.
    if (worker.isConnected()) worker.send({ type: 'shutdown' } satisfies WorkerMessage, undefined, () => undefined);
    worker.process.kill('SIGTERM');
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }));
}

function printBanner(config: Config, port: number, databaseLabel: string, adminToken: string): void {
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const base = config.port === port ? config.publicUrl : `http://${host}:${port}`;
  const lines = [
    '',
    `Registrar is running: ${config.workers} HTTP worker${config.workers === 1 ? '' : 's'}, 1 job worker, ${databaseLabel}`,
    `  Mail       ${config.smtpUrl ? 'SMTP (SMTP_URL)' : 'built-in mailbox: GET /admin/mail with the admin token'}`,
    `  API        ${base}`,
    `  Docs       ${base}/docs`,
    `  Dashboard  ${base}/dashboard`,
    `  Health     ${base}/health`,
    `  Admin token (Authorization: Bearer ...): ${adminToken}`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
