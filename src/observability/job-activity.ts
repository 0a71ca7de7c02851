// What the job process is doing right now, for its lane on the dashboard and for the metrics:
// the jobs in flight, each email of a batch job with what it really waits for (its turn under
// rush pacing, a mail-server connection, the database, the SMTP exchange), and the queue depth
// per task read from the database every few seconds.
import cluster from 'node:cluster';
import type { Metrics } from './metrics.ts';
import type { WorkerActivity } from './request-tracker.ts';

/** Told by the job runners (src/jobs/job-runners.ts) when each job starts and ends. */
export type JobObserver = {
  started(job: { id: string; task: string; attempts: number }): void;
  finished(jobId: string): void;
};

/** What the metrics read of the worker-thread pool. */
type ThreadPoolStats = { stats(): { queued: number; utilization: number; threads: number } };

const SAMPLE_SIZE = 12;

const PHASE_BY_TASK: Record<string, string> = { send_email: 'running an email job', deliver_webhook: 'calling a webhook', import_csv: 'importing a CSV on the thread pool' };

/**
 * The steps of one email: `turn` is its wait in the send window (src/jobs/email/send-window.ts,
 * up to EMAIL_CONCURRENCY, which paces the emails one at a time during a rush), `load`
 * and `record` its queries, `send` the exchange with the mail server.
 */
export type EmailStep = 'turn' | 'load' | 'send' | 'record';

/** Reports the steps of one entry (an email) of a running job; `done` when it has finished. */
export type EntryReporter = { step(step: EmailStep): void; done(): void };

export type JobLanes = {
  /** Entry `index` (from 0) of `total` in job `jobId`. */
  entry(jobId: string, index: number, total: number): EntryReporter;
  /** Whether emails are paced for a rush now (rush-yield.ts): their wait for a turn is that pacing. */
  setRush(rush: boolean): void;
};

type Entry = { jobId: string; index: number; total: number; step: EmailStep; since: number; order: number };

/** What an email's step is, in words; `position` is its place among the emails waiting for a turn; `window` the send window's size. */
export function describeEmailStep(step: EmailStep, options: { rush: boolean; transport: 'smtp' | 'mailbox'; position?: { at: number; of: number }; window?: number }): { phase: string; detail: string } {
  const place = options.position ? [`email ${options.position.at} of ${options.position.of} in line`] : [];
  const size = options.window !== undefined && !options.rush ? [`send window ${options.window}`] : [];
  const line = place.length + size.length > 0 ? ` (${[...place, ...size].join(', ')})` : '';
  switch (step) {
    case 'turn':
      if (options.rush) return { phase: 'waiting: rush pacing', detail: `waiting: rush pacing${line}` };
      if (options.transport === 'smtp') return { phase: 'waiting for a mail-server connection', detail: `waiting for a mail-server connection${line}` };
      return { phase: 'waiting for an email slot', detail: `waiting for an email slot${line}` };
    case 'load':
      return { phase: 'waiting for the database', detail: 'waiting for the database (reading the event)' };
    case 'send':
      return options.transport === 'smtp'
        ? { phase: 'sending email to SMTP', detail: 'sending email to SMTP' }
        : { phase: 'writing email to the mailbox', detail: 'writing email to the built-in mailbox (database)' };
    case 'record':
      return { phase: 'waiting for the database', detail: 'waiting for the database (recording the email sent)' };
  }
}

/** The steps that do work come first in the lane's sample; the waits for a turn after them, in line order. */
const STEP_ORDER: Record<EmailStep, number> = { send: 0, record: 1, load: 2, turn: 3 };

/** One task's counts in the queue, as the job worker's stats reader returns them. */
export type TaskQueueCounts = { task: string; queued: number; running: number; retrying: number; dead: number; oldest_queued_seconds: number | null };

export function startJobActivity(readQueueStats: () => Promise<readonly TaskQueueCounts[]>, metrics: Metrics, onError: (error: unknown) => void, options: { transport?: 'smtp' | 'mailbox'; emailWindow?: () => number } = {}): { observer: JobObserver; lanes: JobLanes; snapshot(): WorkerActivity; watchThreadPool(pool: ThreadPoolStats): void; stop(): void } {
  let threadPool: ThreadPoolStats | undefined;
  const transport = options.transport ?? 'smtp';
  const running = new Map<string, { task: string; attempts: number; startedAt: number }>();
  const entries = new Set<Entry>();
  let rush = false;
  let order = 0;

  const lanes: JobLanes = {
    entry(jobId, index, total) {
      const entry: Entry = { jobId, index, total, step: 'turn', since: performance.now(), order: order++ };
      entries.add(entry);
      return {
        step(step) {
          entry.step = step;
          entry.since = performance.now();
        },
        done() {
          entries.delete(entry);
        },
      };
    },
    setRush(now) {
      rush = now;
    },
  };

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
    const count = (phase: string) => {
      byPhase[phase] = (byPhase[phase] ?? 0) + 1;
    };
    const sample: WorkerActivity['sample'] = [];
    // Each email of a job is shown with its own step: a batch job's age says nothing of what
    // its emails wait for.
    const withEntries = new Set<string>();
    const waiting = [...entries].filter((e) => e.step === 'turn').sort((a, b) => a.order - b.order);
    const place = new Map(waiting.map((e, i) => [e, i + 1]));
    const ordered = [...entries].sort((a, b) => STEP_ORDER[a.step] - STEP_ORDER[b.step] || a.order - b.order);
    for (const entry of ordered) {
      withEntries.add(entry.jobId);
      const at = place.get(entry);
      const window = options.emailWindow?.();
      const { phase, detail } = describeEmailStep(entry.step, { rush, transport, ...(at !== undefined ? { position: { at, of: waiting.length } } : {}), ...(window !== undefined ? { window } : {}) });
      count(phase);
      if (sample.length < SAMPLE_SIZE) {
        const attempts = running.get(entry.jobId)?.attempts ?? 1;
        sample.push({ label: `job ${entry.jobId}, email ${entry.index + 1} of ${entry.total}${attempts > 1 ? ` (attempt ${attempts})` : ''}`, route: 'send_email', phase: detail, ageMs: Math.round(now - entry.since) });
      }
    }
    let others = 0;
    for (const [id, job] of running) {
      if (withEntries.has(id)) continue;
      others += 1;
      // An email job none of whose emails is under way is reading its payload or completing.
      const phase = job.task === 'send_email' ? 'waiting for the database' : PHASE_BY_TASK[job.task] ?? job.task;
      count(phase);
      if (sample.length < SAMPLE_SIZE) {
        sample.push({ label: `job ${id}${job.attempts > 1 ? ` (attempt ${job.attempts})` : ''}`, route: job.task, phase: job.task === 'send_email' ? 'waiting for the database (the job\'s own rows)' : phase, ageMs: Math.round(now - job.startedAt) });
      }
    }
    // Job throughput is not request throughput: the dashboard's request charts leave it out.
    return { pid: process.pid, role: 'jobs', inFlight: entries.size + others, byPhase, sample, seconds: [] };
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
    readQueueStats().then((rows) => {
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
    lanes,
    snapshot,
    watchThreadPool(pool) {
      threadPool = pool;
    },
    stop() {
      clearInterval(publish);
      clearInterval(poll);
    },
  };
}
