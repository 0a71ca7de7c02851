// What the job process is doing right now, for its lane on the dashboard and for the metrics:
// the jobs in flight, and the queue depth per task read from the database every few seconds.
import cluster from 'node:cluster';
import type { Sql } from '../db/database.ts';
import { queueStats } from '../db/queries/jobs.queries.ts';
import type { JobObserver } from '../jobs/job-runners.ts';
import type { ThreadPool } from '../runtime/thread-pool.ts';
import type { Metrics } from './metrics.ts';
import type { WorkerActivity } from './request-tracker.ts';

const PHASE_BY_TASK: Record<string, string> = { send_email: 'sending email', deliver_webhook: 'calling a webhook', import_csv: 'importing a CSV on the thread pool' };

export function startJobActivity(sql: Sql, metrics: Metrics, onError: (error: unknown) => void): { observer: JobObserver; watchThreadPool(pool: ThreadPool): void; stop(): void } {
  let threadPool: ThreadPool | undefined;
  const running = new Map<string, { task: string; attempts: number; startedAt: number }>();

  const observer: JobObserver = {
    started(job) {
      running.set(job.id, { task: job.task, attempts: job.attempts, startedAt: performance.now() });
    },
    finished(jobId) {
      running.delete(jobId);
    },
  };

  const snapshot = (): WorkerActivity => {
    const now = performance.now();
    const byPhase: Record<string, number> = {};
    const jobs = [...running.entries()];
    for (const [, job] of jobs) {
      const phase = PHASE_BY_TASK[job.task] ?? job.task;
      byPhase[phase] = (byPhase[phase] ?? 0) + 1;
    }
    const sample = jobs.slice(0, 12).map(([id, job]) => ({
      label: `job ${id}${job.attempts > 1 ? ` (attempt ${job.attempts})` : ''}`,
      route: job.task,
      phase: PHASE_BY_TASK[job.task] ?? job.task,
      ageMs: Math.round(now - job.startedAt),
    }));
    // Job throughput is not request throughput: the dashboard's request charts leave it out.
    return { pid: process.pid, role: 'jobs', inFlight: running.size, byPhase, sample, seconds: [] };
  };

  const publish = setInterval(() => {
    if (cluster.isWorker && process.connected) process.send!({ type: 'worker-state', activity: snapshot() });
  }, 500);
  const poll = setInterval(() => {
    if (threadPool) {
      const stats = threadPool.stats();
      metrics.threadPoolQueue.set({ worker: metrics.worker }, stats.queued);
      metrics.threadPoolUtilization.set({ worker: metrics.worker }, stats.utilization);
      metrics.threadPoolThreads.set({ worker: metrics.worker }, stats.threads);
    }
    queueStats(sql).then((rows) => {
      for (const row of rows) {
        for (const state of ['queued', 'running', 'retrying', 'dead'] as const) metrics.jobs.set({ task: row.task, state }, row[state]);
        metrics.oldestJob.set({ task: row.task }, row.oldest_queued_seconds ?? 0);
      }
    }, onError);
  }, 2_000);
  publish.unref();
  poll.unref();
  return {
    observer,
    watchThreadPool(pool) {
      threadPool = pool;
    },
    stop() {
      clearInterval(publish);
      clearInterval(poll);
    },
  };
}
