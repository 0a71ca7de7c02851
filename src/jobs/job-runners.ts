// The job runners of one job process: graphile-worker pools, one per kind of work, each with its
// own concurrency, so slow work cannot starve urgent work: a webhook receiver that hangs until
// its timeout holds a webhook slot, never an email slot.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { Logger as GraphileLogger, run, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import * as graphileLib from 'graphile-worker/dist/lib.js';
import type { Logger } from 'pino';
import { type LeaseKeeper, startLeaseKeeper } from './lease-keeper.ts';
import type { Sql } from '../db/database.ts';
import { OUT_OF_RESOURCES_CODES } from '../db/postgres-errors.ts';
import type { JobObserver } from '../observability/job-activity.ts';

// graphile-worker (0.17.3, pinned exactly in package.json) writes a job's outcome (complete:
// delete the row; fail: reschedule it) with retries only for the SQLSTATEs in its internal
// RETRYABLE_ERROR_CODES table, and does not await that write: any other error is an unhandled
// rejection that ends the job process. A database short of disk, memory or other resources, or
// an I/O error (PostgreSQL's 58030 for a write ENOSPC cut short), refuses such a write until an
// operator frees room; waiting for it (1 s backoff growing to 30 s) completes the job once there
// is room, instead of a process crash, a second run of the job and an attempt spent. The codes
// are postgres-errors.ts's, the ones HTTP answers 503 for. The table is internal: another
// version may not have it, and then the job process refuses to start rather than run unpatched.
const retryable = (graphileLib as { RETRYABLE_ERROR_CODES?: unknown }).RETRYABLE_ERROR_CODES;
if (typeof retryable !== 'object' || retryable === null) {
  const { version } = createRequire(import.meta.url)('graphile-worker/package.json') as { version: string };
  throw new Error(`graphile-worker ${version} has no RETRYABLE_ERROR_CODES table in dist/lib.js: the job runners patch it and are written for graphile-worker 0.17.3`);
}
for (const code of OUT_OF_RESOURCES_CODES) graphileLib.RETRYABLE_ERROR_CODES[code] ??= { minDelay: 1_000, maxDelay: 30_000 };

export type RunnerSpec = {
  name: string;
  concurrency: number;
  taskList: TaskList;
  /**
   * Mostly idle beside the others (webhooks, imports): its workers look for jobs when they poll
   * (each poll interval while idle, back to back while there are jobs), not at every job added.
   * graphile-worker nudges idle workers at each insert of any job (one NOTIFY per statement),
   * and a look filters the queue's available jobs by task in priority order, so a runner whose
   * tasks have no jobs walks every other runner's waiting job at each nudge: the 100,000 join
   * emails waiting through a rush cost the idle runners 0.6-1.1 PostgreSQL backends at once
   * (docs/benchmarks.md). A job for it starts within a poll interval.
   */
  idleMostly?: boolean;
};

export type JobRunners = { stop(): Promise<void> };

/**
 * graphile-worker's connections for one runner: it takes a connection to fetch a job and to
 * write its outcome, and none while the job runs, so a runner of 128 email slots needs far
 * fewer than 128 (its slots wait their turn for a connection, a few milliseconds). Two more:
 * the LISTEN connection and slack.
 */
const RUNNER_CONNECTIONS_MAX = 16;

export function runnerPoolSize(concurrency: number): number {
  return Math.min(concurrency, RUNNER_CONNECTIONS_MAX) + 2;
}

/**
 * Makes an idle-mostly runner's pool deaf to new-job notifications: its workers find jobs by
 * polling. graphile-worker's local queue with a refetch delay did the same but left a fetch
 * running after runner.stop() under load (docs/design.md, "Why every runner wakes on every new
 * job"); here nothing runs but the workers' own polls, which stop() waits for. The pool's
 * `nudge` (called by its LISTEN handler at each notification) is graphile-worker 0.17's; another
 * version without it refuses to start rather than run unpatched.
 */
function ignoreNotifications(workerPool: { nudge?: unknown }): boolean {
  if (typeof workerPool.nudge !== 'function') return false;
  workerPool.nudge = () => undefined;
  return true;
}

function graphileLogger(logger: Logger): GraphileLogger {
  // Only the scope goes to the log, never the job: its payload can hold a manage token.
  // graphile-worker's per-job "completed" lines are info; here they are debug.
  return new GraphileLogger((scope) => (level, message) => {
    const method = level === 'error' ? 'error' : level === 'warning' ? 'warn' : 'debug';
    logger[method]({ task: scope.taskIdentifier, jobId: scope.jobId }, message);
  });
}

export async function startJobRunners(options: { databaseUrl: string; sql: Sql; specs: RunnerSpec[]; logger: Logger; pollIntervalMs?: number; observer?: JobObserver }): Promise<JobRunners> {
  const lockerIds = new Set<string>();
  const runners: Runner[] = [];
  const stopRunners = () => Promise.all(runners.map((runner) => runner.stop()));
  const pollInterval = options.pollIntervalMs ?? 1_000;
  try {
    for (const spec of options.specs) {
      const events: WorkerEvents = new EventEmitter();
      // graphile-worker (0.17) locks jobs in the name of the worker pool (locked_by = the pool's
      // id), not of its workers: the heartbeat names the pools, so a live process's jobs are
      // never taken for a dead one's.
      let deaf = false;
      events.on('pool:create', ({ workerPool }) => {
        lockerIds.add(workerPool.id);
        if (spec.idleMostly) deaf = ignoreNotifications(workerPool);
      });
      events.on('pool:release', ({ workerPool }) => lockerIds.delete(workerPool.id));
      events.on('job:start', ({ job }) => options.observer?.started({ id: job.id, task: job.task_identifier, attempts: job.attempts }));
      events.on('job:complete', ({ job }) => options.observer?.finished(job.id));
      runners.push(await run({
        connectionString: options.databaseUrl,
        concurrency: spec.concurrency,
        maxPoolSize: runnerPoolSize(spec.concurrency),
        taskList: spec.taskList,
        noHandleSignals: true, // the process's Lifecycle owns the signals
        pollInterval,
        logger: graphileLogger(options.logger.child({ runner: spec.name })),
        events,
      }));
      if (spec.idleMostly && !deaf) throw new Error(`graphile-worker's pool for the ${spec.name} runner has no nudge() to quiet: the job runners are written for graphile-worker 0.17.3`);
    }
  } catch (error) {
    await stopRunners();
    throw error;
  }
  const keeper: LeaseKeeper = startLeaseKeeper(options.sql, () => [...lockerIds], {
    onError: (error) => options.logger.warn({ err: error }, 'job lease keeper: database unavailable'),
  });
  return {
    async stop() {
      await stopRunners();
      await keeper.stop();
    },
  };
}
