// Owns one measured run's surroundings: a fresh database, the bench's SMTP server with its delay, the
// service started on both and ready, and their teardown when the run ends, fails or is interrupted.
import path from 'node:path';
import { waitForJobWorker } from './database-facts.ts';
import type { ScenarioContext } from './scenario.ts';
import { emailInRequestEnvironment } from '../test/support/email-in-request.ts';
import { type RunningService, startBenchService } from '../test/support/service-process.ts';
import { startSmtpServer, type TestSmtpServer } from '../test/support/smtp-server.ts';

export type RunSetup = {
  /** Names the database (bench_<name>) and the service's data directory. */
  name: string;
  workers: number;
  emailConcurrency: number;
  /** Load the email-in-request plug-in: each answer of POST /register waits for its email. */
  emailInRequest?: boolean;
  emailDelayMs: number;
  /** More of the service's variables (e.g. IMPORT_THREADS), passed as they are. */
  environment?: Readonly<Record<string, string>>;
};

export type RunEnvironment = {
  service: RunningService;
  smtp: TestSmtpServer;
  databaseUrl: string;
  /** Roots of the process trees whose CPU time is the service's: label -> pid. */
  cpuRoots: Record<string, number>;
};

const JOB_WORKER_READY_TIMEOUT_MS = 30_000;

export async function withServiceRun<T>(context: ScenarioContext, setup: RunSetup, body: (run: RunEnvironment) => Promise<T>): Promise<T> {
  context.signal.throwIfAborted();
  const database = await context.database();
  context.signal.throwIfAborted();
  const databaseUrl = await database.createDatabase(`bench_${setup.name.replace(/[^a-z0-9]+/g, '_')}`);

  const smtp = await startSmtpServer({ delayMs: setup.emailDelayMs });
  let smtpStopped: Promise<void> | undefined;
  const stopSmtp = () => (smtpStopped ??= smtp.stop());
  context.cleanup.add(`stop the SMTP server of ${setup.name}`, stopSmtp);

  let service: RunningService | undefined;
  try {
    const extra = Object.entries(setup.environment ?? {}).map(([name, value]) => `, ${name}=${value}`).join('');
    const email = setup.emailInRequest ? 'email in the request (plug-in)' : 'email on the job queue';
    context.log(`${setup.name}: starting the service (${setup.workers} HTTP workers, ${email}, SMTP ${setup.emailDelayMs} ms/message${extra})`);
    const environment = { ...(setup.emailInRequest ? emailInRequestEnvironment() : {}), ...setup.environment };
    service = await startBenchService({
      databaseUrl,
      dataDir: path.join(database.dir, `service-${setup.name}`),
      smtpUrl: smtp.url,
      workers: setup.workers,
      emailConcurrency: setup.emailConcurrency,
      environment,
    }, {
      signal: context.signal,
      onSpawned: (spawned) => context.cleanup.add(`stop the service of ${setup.name}`, () => spawned.stop()),
    });
    // Emails must not wait for a job worker still starting: its lease keeper's first heartbeat
    // says its runners are up.
    const ready = await waitForJobWorker(databaseUrl, JOB_WORKER_READY_TIMEOUT_MS).catch((error: unknown) => {
      context.log(`${setup.name}: could not tell whether the job worker is up (${String(error)}); going on`);
      return true;
    });
    if (!ready) throw new Error(`${setup.name}: the job worker wrote no heartbeat within ${JOB_WORKER_READY_TIMEOUT_MS} ms`);
    const cpuRoots = { service: service.pid, postgres: await database.postmasterPid() };
    return await body({ service, smtp, databaseUrl, cpuRoots });
  } finally {
    await service?.stop().catch((error: unknown) => context.log(`${setup.name}: ${String(error)}`));
    await stopSmtp();
  }
}
