// The in-process service an integration test suite runs against: a fresh database, the HTTP app on
// a real socket, and the parts the suite asks for (an upload folder, a webhook receiver, an SMTP
// server, the job runners). useStack starts it before the suite's tests and stops it after them, last started first.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { JobRunners } from '../../src/jobs/job-runners.ts';
import { createCleanup } from './cleanup.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { startTestServer, type TestServer, type TestServerOptions } from './http.ts';
import { startTestJobRunners } from './job-runners.ts';
import { startSmtpServer, type TestSmtpServer } from './smtp-server.ts';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts';

export type RunnerOptions = NonNullable<Parameters<typeof startTestJobRunners>[1]>;

export type StackOptions = {
  /** Connections of the database pool the app and the runners share. */
  poolSize?: number;
  /** Imports accepted up to this size, stored in a temporary folder removed at the end. */
  uploadMaxBytes?: number;
  server?: TestServerOptions;
  receiver?: boolean;
  /** A real SMTP server; the job runners send to it unless told another smtpUrl. */
  smtp?: boolean;
  /** The job runners, started with the stack; without it a test may start them (startRunners). */
  runners?: RunnerOptions;
};

type BaseStack = {
  db: TestDatabase;
  /** A test may replace it (a restart): the stop closes the one in place. */
  server: TestServer;
  runners: JobRunners | undefined;
  /** Starts the job runners (once the test has set the database up); stopped with the stack. */
  startRunners(options?: RunnerOptions): Promise<JobRunners>;
  /**
   * Adds a step to the stop, run before those of the parts started so far (a second server on
   * the suite's database closes before the database is dropped), bounded like theirs.
   */
  onStop(label: string, step: () => Promise<void> | void): void;
  /** Stops every part, last started first; throws if one failed to stop. */
  stop(): Promise<void>;
};

export type Stack<O extends StackOptions = StackOptions> = BaseStack
  & (O extends { uploadMaxBytes: number } ? { dataDir: string } : unknown)
  & (O extends { receiver: true } ? { receiver: WebhookReceiver } : unknown)
  & (O extends { smtp: true } ? { smtp: TestSmtpServer } : unknown)
  & (O extends { runners: RunnerOptions } ? { runners: JobRunners } : unknown);

type Parts = BaseStack & { dataDir?: string; receiver?: WebhookReceiver; smtp?: TestSmtpServer };

/**
 * The stack of the current suite (the file, or the describe() it is called in), then `setUp` (the
 * suite's own data) in the same hook: node:test runs a file's top-level before() hooks together,
 * not one after the other, so a second hook could not count on the stack being up.
 */
export function useStack<const O extends StackOptions = Record<never, never>>(options?: O, setUp?: (stack: Stack<O>) => Promise<void> | void): Stack<O> {
  const stack = {} as Parts;
  before(async () => {
    await startParts(stack, options ?? {});
    await setUp?.(stack as Stack<O>);
  });
  after(() => stack.stop?.());
  return stack as Stack<O>;
}

async function startParts(stack: Parts, options: StackOptions): Promise<void> {
  const failures: string[] = [];
  const cleanup = createCleanup((line) => failures.push(line));
  stack.runners = undefined;
  stack.stop = async () => {
    await cleanup.run();
    if (failures.length > 0) throw new Error(`the test stack did not stop cleanly:\n${failures.join('\n')}`);
  };
  stack.onStop = (label, step) => cleanup.add(label, step);
  stack.startRunners = async (runnerOptions = {}) => {
    if (stack.runners) throw new Error('the job runners of this stack are already started');
    const runners = await startTestJobRunners(stack.db, { ...(stack.smtp ? { smtpUrl: stack.smtp.url } : {}), ...runnerOptions });
    stack.runners = runners;
    cleanup.add('stop the job runners', () => runners.stop());
    return runners;
  };

  stack.db = await createTestDatabase(options.poolSize);
  cleanup.add('drop the test database', () => stack.db.drop());
  let imports: { dataDir: string; maxBytes: number } | undefined;
  if (options.uploadMaxBytes !== undefined) {
    const dataDir = stack.dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-test-uploads-'));
    cleanup.add(`remove ${dataDir}`, () => rm(dataDir, { recursive: true, force: true }));
    imports = { dataDir, maxBytes: options.uploadMaxBytes };
  }
  stack.server = await startTestServer(stack.db.sql, { ...options.server, ...(imports ? { imports } : {}) });
  cleanup.add('close the HTTP server', () => stack.server.close());
  if (options.receiver) {
    const receiver = stack.receiver = await startWebhookReceiver();
    cleanup.add('close the webhook receiver', () => receiver.close());
  }
  if (options.smtp) {
    const smtp = stack.smtp = await startSmtpServer();
    cleanup.add('stop the SMTP server', () => smtp.stop());
  }
  if (options.runners) await stack.startRunners(options.runners);
}
