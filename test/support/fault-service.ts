// The service as a user runs it (node src/main.ts, its embedded PostgreSQL, a real SMTP server)
// for the tests that kill its processes mid-rush: started, reached, and cleaned up whatever died.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from '../../src/db/database.ts';
import { TEST_ADMIN_TOKEN } from './http.ts';
import { failureReason, send, type SendOptions } from './rush.ts';
import {
  findSupervisorPid, freePort, killProcessGroup, type ServiceProcess, spawnService, stopEmbeddedPostgres, stopProcess, waitForHealth,
} from './service-process.ts';
import { startSmtpServer, type TestSmtpServer } from './smtp-server.ts';

export type FaultService = {
  baseUrl: string;
  dataDir: string;
  smtp: TestSmtpServer;
  service: ServiceProcess;
  supervisorPid: number;
  /** SIGTERM to the supervisor (SIGKILL to the group if it hangs), the database, the SMTP server, DATA_DIR. */
  stop(): Promise<void>;
};

export const ADMIN_HEADERS: Readonly<Record<string, string>> = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** `workers` HTTP workers and the job worker, sending to a real SMTP server that takes `smtpDelayMs` per message. */
export async function startFaultService(options: { name: string; workers: number; emailConcurrency: number; smtpDelayMs: number }): Promise<FaultService> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `registrar-${options.name}-`));
  const smtp = await startSmtpServer({ delayMs: options.smtpDelayMs });
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const service = spawnService({
    via: 'node',
    env: {
      WORKERS: String(options.workers),
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      SMTP_URL: smtp.url,
      EMAIL_CONCURRENCY: String(options.emailConcurrency),
      // The whole rush comes from one client address: not what is under test here.
      RATE_LIMIT_PER_MINUTE: '0',
    },
  });
  let supervisorPid: number | undefined;
  const stop = async () => {
    if (service.isRunning()) await stopProcess(service, { pid: supervisorPid, timeoutMs: 30_000 }).catch(() => killProcessGroup(service));
    killProcessGroup(service);
    await stopEmbeddedPostgres(dataDir).catch(() => undefined);
    await smtp.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForHealth(baseUrl, { timeoutMs: 90_000, service });
    supervisorPid = await findSupervisorPid(service);
  } catch (error) {
    await stop();
    throw error;
  }
  return { baseUrl, dataDir, smtp, service, supervisorPid, stop };
}

/**
 * A request retried (bounded) while the service recovers from a kill: a network failure or a
 * 503 is asked again; any other answer is returned.
 */
export async function calmRequest(baseUrl: string, method: string, urlPath: string, options: SendOptions): Promise<{ status: number; body: any }> {
  let last = '';
  for (let attempt = 0; attempt < 120; attempt++) {
    const outcome = await send(baseUrl, method, urlPath, { timeoutMs: 10_000, ...options });
    if (outcome.ok && outcome.answer.status !== 503) return outcome.answer;
    last = outcome.ok ? `503 ${JSON.stringify(outcome.answer.body)}` : failureReason(outcome.error);
    await sleep(250);
  }
  throw new Error(`${method} ${urlPath}: no answer but ${last}`);
}

/** The job workers alive now: the pids of the heartbeats their lease keepers wrote in the last 5 s. */
export async function liveJobWorkerPids(sql: Sql): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`SELECT DISTINCT pid FROM job_worker_heartbeats WHERE seen_at > now() - interval '5 seconds'`;
  return rows.map((row) => row.pid);
}
