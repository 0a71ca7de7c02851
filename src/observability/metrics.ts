// Owns the Prometheus metrics of one process (prom-client's global registry). Every series that
// differs per process carries a `worker` label, so the cluster aggregation (a sum by default)
// keeps them apart; counters without it add up across workers, as they should.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import client from 'prom-client';

export type ProcessRole = 'http' | 'jobs';

let registered: Metrics | undefined;

export type Metrics = ReturnType<typeof createMetrics>;

function createMetrics(role: ProcessRole, worker: string) {
  // Constructing an AggregatorRegistry is what makes a cluster worker answer the supervisor's
  // requests for its metrics (prom-client installs the listener then).
  new client.AggregatorRegistry();
  client.collectDefaultMetrics({ labels: { worker, role } });
  const labels = { worker, role };

  let lastElu = performance.eventLoopUtilization();
  new client.Gauge({
    name: 'registrar_event_loop_utilization',
    help: 'Share of time the event loop was busy since the previous scrape (0-1)',
    labelNames: ['worker', 'role'],
    collect() {
      const now = performance.eventLoopUtilization();
      this.set(labels, performance.eventLoopUtilization(now, lastElu).utilization);
      lastElu = now;
    },
  });
  const delayResolutionMs = 10;
  const delay = monitorEventLoopDelay({ resolution: delayResolutionMs });
  delay.enable();
  new client.Gauge({
    name: 'registrar_event_loop_delay_p99_seconds',
    help: 'p99 event-loop delay since the previous scrape',
    labelNames: ['worker', 'role'],
    collect() {
      // The histogram's delays include its own sampling resolution (an idle loop reads ~10 ms),
      // as process-pressure.ts notes: take it off.
      this.set(labels, Math.max(0, delay.percentile(99) / 1e6 - delayResolutionMs) / 1e3);
      delay.reset();
    },
  });

  const swapLockRetries = new client.Counter({
    name: 'registrar_swap_lock_retries_total',
    help: 'Transactions run again with a waiting swap\'s old course locked first, after their promotion found it held by another transaction (RGW01), by operation',
    labelNames: ['operation'],
  });
  // Each operation's series from the start, at 0: a rate over it needs the sample before the first retry.
  for (const operation of ['cancel', 'swap', 'course-change']) swapLockRetries.inc({ operation }, 0);

  return {
    worker,
    role,
    httpRequests: new client.Counter({ name: 'registrar_http_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'] }),
    httpDuration: new client.Histogram({
      name: 'registrar_http_request_duration_seconds',
      help: 'Time from the first byte of a request to its answer',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    registrationBatch: new client.Histogram({
      name: 'registrar_registration_batch_size',
      help: 'Registrations per group-commit transaction (one database transaction each)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    }),
    shed: new client.Counter({ name: 'registrar_http_shed_total', help: 'Requests refused with 503 overloaded by load shedding' }),
    fastRefusals: new client.Counter({ name: 'registrar_fast_refusals_total', help: 'Registrations refused 409 course-full from memory, for a course known full: no transaction' }),
    swapLockRetries,
    httpInFlight: new client.Gauge({ name: 'registrar_http_requests_in_flight', help: 'Requests being handled now', labelNames: ['worker'] }),
    queueStreams: new client.Gauge({ name: 'registrar_queue_streams', help: 'Open streams of queue places (GET /queue/{id}/events)', labelNames: ['worker'] }),
    dbInUse: new client.Gauge({ name: 'registrar_db_pool_in_use', help: 'Requests of this process in their database phase, up to the pool size: an estimate of the connections in use (postgres.js does not expose its pool; a group commit shares one connection among many requests)', labelNames: ['worker'] }),
    dbWaiting: new client.Gauge({ name: 'registrar_db_pool_waiting', help: 'Requests of this process in their database phase beyond the pool size: an estimate of the requests waiting for a connection', labelNames: ['worker'] }),
    dbPoolSize: new client.Gauge({ name: 'registrar_db_pool_size', help: 'Database connections this process may open', labelNames: ['worker'] }),
    jobs: new client.Gauge({ name: 'registrar_jobs', help: 'Jobs by task and state (queued, running, retrying, dead)', labelNames: ['task', 'state'], aggregator: 'max' }),
    oldestJob: new client.Gauge({ name: 'registrar_job_oldest_queued_seconds', help: 'Age of the oldest job ready to run, per task', labelNames: ['task'], aggregator: 'max' }),
    emails: new client.Counter({ name: 'registrar_emails_total', help: 'Email attempts by outcome (sent, failed, retry)', labelNames: ['outcome'] }),
    emailWindow: new client.Gauge({ name: 'registrar_email_send_window', help: 'Emails the job process may have in flight now: the send window, grown while the mail server keeps up and halved on 4xx replies and timeouts, up to EMAIL_CONCURRENCY', aggregator: 'max' }),
    threadPoolQueue: new client.Gauge({ name: 'registrar_thread_pool_queued', help: 'Tasks waiting for a thread of the worker-thread pool', labelNames: ['worker'] }),
    threadPoolUtilization: new client.Gauge({ name: 'registrar_thread_pool_utilization', help: 'Share of the pool\'s capacity busy since it started (piscina utilization, 0-1)', labelNames: ['worker'] }),
    threadPoolThreads: new client.Gauge({ name: 'registrar_thread_pool_threads', help: 'Threads in the worker-thread pool', labelNames: ['worker'] }),
    webhooks: new client.Counter({ name: 'registrar_webhooks_total', help: 'Webhook attempts by outcome (delivered, failed, retry)', labelNames: ['outcome'] }),
  };
}

/** The metrics of this process, registered once. */
export function processMetrics(role: ProcessRole = 'http', worker = String(process.pid)): Metrics {
  registered ??= createMetrics(role, worker);
  return registered;
}
