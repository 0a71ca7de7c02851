// The in-process stack most integration tests of email and webhooks need: a fresh database, the
// HTTP app over a real socket, the job runners sending to the built-in mailbox, and a webhook
// receiver. Stopped in reverse order.
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { startTestServer, type TestServer } from './http.ts';
import { startTestJobRunners } from './job-runners.ts';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts';

export type MailboxStack = {
  db: TestDatabase;
  server: TestServer;
  runners: JobRunners;
  receiver: WebhookReceiver;
  stop(): Promise<void>;
};

export async function startMailboxStack(): Promise<MailboxStack> {
  const db = await createTestDatabase();
  const server = await startTestServer(db.sql);
  const runners = await startTestJobRunners(db); // no SMTP URL: the built-in mailbox
  const receiver = await startWebhookReceiver();
  const stack: MailboxStack = {
    db, server, runners, receiver,
    // The parts as they are at the end: a test may have replaced the server (a restart).
    async stop() {
      await stack.runners.stop();
      await stack.receiver.close();
      await stack.server.close();
      await stack.db.drop();
    },
  };
  return stack;
}
