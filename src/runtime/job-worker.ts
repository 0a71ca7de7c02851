// The job process: sends the emails and delivers the webhooks that registration changes queued,
// off the request path. Its own database pool, bounded concurrency per kind of work. Stops like
// an HTTP worker: on the supervisor's order, SIGTERM, or when the supervisor is gone, it lets the
// jobs in flight finish (graphile-worker's graceful stop) and closes its connections.
import { setPriority } from 'node:os';
import type { Config } from '../config.ts';
import { connectDatabase } from '../db/database.ts';
import { queueStats } from '../db/queries/jobs.queries.ts';
import { readQueueFigures } from '../domain/queue-figures.service.ts';
import { createEmailDelivery, EMAIL_DATABASE_CONNECTIONS } from '../jobs/email/deliver-email.ts';
import { createSendWindow } from '../jobs/email/send-window.ts';
import { createLimiter } from '../jobs/job-entries.ts';
import { yieldEmailsToRushes } from '../jobs/rush-yield.ts';
import { createConfiguredTransport } from '../jobs/email/mail-transport.ts';
import { startJobRunners } from '../jobs/job-runners.ts';
import { createDeliverWebhookTask } from '../jobs/tasks/deliver-webhook.task.ts';
import { createImportCsvTask } from '../jobs/tasks/import-csv.task.ts';
import { createSendEmailTask } from '../jobs/tasks/send-email.task.ts';
import { createThreadPool } from './thread-pool.ts';
import { startHousekeeping } from '../jobs/housekeeping.ts';
import { startJobActivity } from '../observability/job-activity.ts';
import { createLogger } from '../observability/logger.ts';
import { processMetrics } from '../observability/metrics.ts';
import { registerQueueMetrics } from '../observability/queue-metrics.ts';
import type { WorkerMessage } from './http-worker.ts';
import { Lifecycle } from './lifecycle.ts';

/**
 * The job process's nice value. Emails, webhooks and imports are background work: when the
 * cores are busy with a rush (HTTP workers, PostgreSQL, on the same machine), they take what the
 * requests leave instead of an equal share, so the registrations are answered first and the
 * emails follow seconds later. When the cores are idle, it makes no difference.
 */
export const JOB_WORKER_NICENESS = 10;

/** The job worker's own pool: the emails' share, one connection per webhook in flight, and two for the rest (stats, housekeeping, imports). */
export function jobWorkerPoolSize(config: Pick<Config, 'emailConcurrency' | 'webhookConcurrency'>): number {
  return Math.min(config.emailConcurrency, EMAIL_DATABASE_CONNECTIONS) + config.webhookConcurrency + 2;
}

export async function runJobWorker(config: Config): Promise<void> {
  const logger = createLogger(config, 'job-worker');
  try {
    // Threads started from here on (the import thread pool) inherit it.
    setPriority(JOB_WORKER_NICENESS);
  } catch (error) {
    logger.warn({ err: error }, 'could not lower the job worker\'s CPU priority');
  }
  const lifecycle = new Lifecycle((message) => logger.info(message));
  if (config.databaseUrl === undefined) throw new Error('the job worker needs DATABASE_URL from its supervisor');
  const sql = connectDatabase(config.databaseUrl, {
    max: jobWorkerPoolSize(config),
    applicationName: `registrar-jobs-${process.pid}`,
    planning: 'keyed',
  });
  lifecycle.add('database pool', () => sql.end({ timeout: 5 }));
  const metrics = processMetrics('jobs');
  const emailWindow = createSendWindow({ ceiling: config.emailConcurrency, onResize: (size) => metrics.emailWindow.set(size) });
  metrics.emailWindow.set(emailWindow.size);
  const pool = createThreadPool(config.importThreads);
  lifecycle.add('thread pool', () => pool.close());
  const transport = createConfiguredTransport(config, sql, emailWindow, pool);
  lifecycle.add('mail transport', () => transport.close());
  const activity = startJobActivity(() => queueStats(sql), metrics, (error) => logger.warn({ err: error }, 'queue stats unavailable'), { transport: transport.kind, emailWindow: () => emailWindow.size });
  lifecycle.add('job activity', async () => activity.stop());
  registerQueueMetrics(() => readQueueFigures(sql), (error) => logger.warn({ err: error }, 'waiting-room figures unavailable for /metrics'));
  const stopHousekeeping = startHousekeeping(sql, (error) => logger.warn({ err: error }, 'housekeeping failed'), {
    retentionDays: config.retentionDays,
    dataDir: config.dataDir,
    onRetention: (removed) => {
      if (Object.values(removed).some((n) => n > 0)) logger.info({ removed, retentionDays: config.retentionDays }, 'removed what is older than the retention');
    },
  });
  lifecycle.add('housekeeping', () => stopHousekeeping());
  activity.watchThreadPool(pool);
  const countEmail = (outcome: string) => metrics.emails.inc({ outcome });
  const stopYielding = yieldEmailsToRushes(emailWindow, config.emailConcurrency, (rush) => {
    activity.lanes.setRush(rush);
    logger.info({ rush, emailWindow: emailWindow.size }, rush ? 'a rush: emails wait for it' : 'the rush is over: emails back to the send window');
  });
  lifecycle.add('rush watch', async () => stopYielding());
  const countWebhook = (outcome: string) => metrics.webhooks.inc({ outcome });

  const runners = await startJobRunners({
    databaseUrl: config.databaseUrl,
    sql,
    logger,
    observer: activity.observer,
    specs: [
      {
        // A job slot per email the window may reach, so single-email jobs (a cancel, a promotion)
        // can fill it too: a slot waiting in the window costs a promise, and graphile-worker takes
        // a connection only to fetch and to complete a job.
        name: 'email',
        concurrency: config.emailConcurrency,
        taskList: { send_email: createSendEmailTask(sql, createEmailDelivery({
          sql, transport, from: config.mailFrom, publicUrl: config.publicUrl, logger, onOutcome: countEmail,
        }), emailWindow, activity.lanes) },
      },
      {
        // One import at a time; its parallelism is the thread pool's.
        name: 'imports',
        concurrency: 1,
        idleMostly: true,
        taskList: { import_csv: createImportCsvTask({ sql, pool, logger }) },
      },
      {
        name: 'webhooks',
        concurrency: config.webhookConcurrency,
        idleMostly: true,
        taskList: { deliver_webhook: createDeliverWebhookTask({ sql, timeoutMs: config.webhookTimeoutMs, logger, allowPrivate: config.webhookAllowPrivate, onOutcome: countWebhook, limit: createLimiter(config.webhookConcurrency) }) },
      },
    ],
  });
  lifecycle.add('job runners', () => runners.stop());
  logger.info({ mail: transport.kind, emailConcurrency: config.emailConcurrency, webhookConcurrency: config.webhookConcurrency }, 'job worker running');

  const stop = () => void lifecycle.stop(config.shutdownTimeoutMs).then(() => process.exit(0));
  process.on('message', (message: WorkerMessage) => {
    if (message?.type === 'shutdown') stop();
  });
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => {});
}
