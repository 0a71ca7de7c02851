// The job process's runners, started inside a test process against its test database: the real
// graphile-worker, the real tasks, a real SMTP server or the built-in mailbox.
import { pino } from 'pino';
import { createEmailDelivery } from '../../src/jobs/email/deliver-email.ts';
import { createMailboxTransport, createSmtpTransport } from '../../src/jobs/email/mail-transport.ts';
import { type JobRunners, startJobRunners } from '../../src/jobs/job-runners.ts';
import { createDeliverWebhookTask } from '../../src/jobs/tasks/deliver-webhook.task.ts';
import { createImportCsvTask } from '../../src/jobs/tasks/import-csv.task.ts';
import { createLimiter } from '../../src/jobs/job-entries.ts';
import { createSendWindow, type SendWindow } from '../../src/jobs/email/send-window.ts';
import { createSendEmailTask } from '../../src/jobs/tasks/send-email.task.ts';
import { createThreadPool } from '../../src/runtime/thread-pool.ts';
import type { TestDatabase } from './database.ts';

/** `emailWindow`: the email send window, as the job worker builds it (default: a window whose ceiling is `emailConcurrency`). */
export async function startTestJobRunners(db: TestDatabase, options: { smtpUrl?: string; emailConcurrency?: number; emailWindow?: SendWindow; smtpTimeoutMs?: number; webhookTimeoutMs?: number; importThreads?: number; importChunkBytes?: number } = {}): Promise<JobRunners> {
  const pool = createThreadPool(options.importThreads ?? 2);
  const logger = pino({ level: 'silent' });
  const emailWindow = options.emailWindow ?? createSendWindow({ ceiling: options.emailConcurrency ?? 8 });
  const transport = options.smtpUrl
    ? createSmtpTransport({ url: options.smtpUrl, concurrency: emailWindow.ceiling, timeoutMs: options.smtpTimeoutMs ?? 5_000, window: emailWindow, threads: pool })
    : createMailboxTransport(db.sql);
  const runners = await startJobRunners({
    databaseUrl: db.url,
    sql: db.sql,
    logger,
    pollIntervalMs: 200,
    specs: [
      { name: 'email', concurrency: emailWindow.ceiling, taskList: { send_email: createSendEmailTask(db.sql, createEmailDelivery({ sql: db.sql, transport, from: 'Registrar <no-reply@localhost>', publicUrl: 'http://127.0.0.1:3000', logger }), emailWindow) } },
      { name: 'imports', concurrency: 1, taskList: { import_csv: createImportCsvTask({ sql: db.sql, pool, logger, ...(options.importChunkBytes ? { chunkBytes: options.importChunkBytes } : {}) }) } },
      { name: 'webhooks', concurrency: 4, taskList: { deliver_webhook: createDeliverWebhookTask({ sql: db.sql, timeoutMs: options.webhookTimeoutMs ?? 2_000, logger, allowPrivate: true, limit: createLimiter(4) }) } },
    ],
  });
  return {
    async stop() {
      await runners.stop();
      await transport.close();
      await pool.close();
    },
  };
}
