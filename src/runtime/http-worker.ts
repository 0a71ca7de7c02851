// One HTTP worker process: its own event loop, its own bounded database pool, its own listening
// socket on the shared port. Stops when the supervisor says so (or on SIGTERM, or
// when the supervisor is gone): stop accepting, finish requests in flight, close the pool.
import type { Config } from '../config.ts';
import { connectDatabase, surviveLostConnections } from '../db/database.ts';
import { buildServer } from '../http/server.ts';
import { createLogger } from '../observability/logger.ts';
import { processMetrics } from '../observability/metrics.ts';
import { Lifecycle } from './lifecycle.ts';

/** From the supervisor to a worker. */
export type WorkerMessage = { type: 'shutdown' };
/** From an HTTP worker to the supervisor. */
export type WorkerReport = { type: 'listening'; port: number };

export async function runHttpWorker(config: Config): Promise<void> {
  const logger = createLogger(config, 'http-worker');
  const lifecycle = new Lifecycle((message) => logger.info(message));
  surviveLostConnections((error) => logger.warn({ err: error }, 'database connection lost (a driver query of its own failed)'));
  if (config.databaseUrl === undefined || config.adminToken === undefined) {
    throw new Error('an HTTP worker needs DATABASE_URL and ADMIN_TOKEN from its supervisor');
  }
  const sql = connectDatabase(config.httpDatabaseUrl ?? config.databaseUrl, {
    max: config.databasePoolSize,
    applicationName: `registrar-http-${process.pid}`,
    transactionPooling: config.httpDatabaseUrl !== undefined,
  });
  lifecycle.add('database pool', () => sql.end({ timeout: 5 }));
  const app = await buildServer({
    sql,
    adminToken: config.adminToken,
    logger,
    metrics: processMetrics('http'),
    poolSize: config.databasePoolSize,
    imports: { dataDir: config.dataDir, maxBytes: config.importMaxBytes },
    rateLimitPerMinute: config.rateLimitPerMinute,
    allowPrivateWebhooks: config.webhookAllowPrivate,
    trustProxy: config.trustProxy,
    metricsToken: config.metricsToken,
    shedding: { maxEventLoopDelayMs: config.maxEventLoopDelayMs, maxDatabaseBacklog: config.maxDatabaseBacklog, maxHeapUsedBytes: 1024 * 1024 * 1024 },
    secureCookies: config.publicUrl.startsWith('https:'),
    publicUrl: config.publicUrl,
    queuePlaceMemory: true,
    notAdmittedHoldMs: config.notAdmittedHoldMs,
  });
  lifecycle.add('http server', () => app.close());
  // Each worker binds its own socket with SO_REUSEPORT (Linux), and the kernel spreads the
  // connections: no hand-off through the supervisor, so a worker that dies cannot strand a
  // connection the supervisor accepted for it. (PORT=0 picks one shared port the classic way.)
  const reusePort = config.port !== 0 && process.platform === 'linux';
  await app.listen({ host: config.host, port: config.port, ...(reusePort ? { exclusive: true, reusePort: true } : {}) });
  const address = app.server.address();
  process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : config.port } satisfies WorkerReport);

  const stop = () => void lifecycle.stop(config.shutdownTimeoutMs).then(() => process.exit(0));
  process.on('message', (message: WorkerMessage) => {
    if (message?.type === 'shutdown') stop();
  });
  process.on('disconnect', stop); // the supervisor died: nobody routes connections here any more
  process.on('SIGTERM', stop);
  // Ctrl-C reaches every process of the terminal's group; the supervisor orders the stop.
  process.on('SIGINT', () => {});
}
