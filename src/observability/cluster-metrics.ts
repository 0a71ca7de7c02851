// /metrics for the whole cluster. Any HTTP worker may be asked; it asks the supervisor, which
// gathers every worker's registry with prom-client's AggregatorRegistry and sends back the sum.
// Gathering asks every worker over IPC and sums thousands of series, so its rate is bounded:
// in the supervisor, aggregations start at least AGGREGATE_INTERVAL_MS apart and never overlap,
// and every scrape that arrives meanwhile shares the next one; in each worker, scrapes share
// one question to the supervisor the same way. N scrapes a second cost at most one aggregation
// per interval, and no answer was gathered before its scrape arrived (counters a client just
// moved are in it).
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import client from 'prom-client';

type MetricsRequest = { type: 'metrics-request'; id: string };
type MetricsResponse = { type: 'metrics-response'; id: string; text?: string; error?: string };

/** The least time between two aggregations' starts; a scrape waits at most this long for its turn. */
const AGGREGATE_INTERVAL_MS = 1_000;

/**
 * `run` in single flight: a call gets the result of a run that starts after the call, runs never
 * overlap, and starts are at least `spacingMs` apart; every call waiting for the next run shares it.
 */
export function coalesce<T>(run: () => Promise<T>, spacingMs: number): () => Promise<T> {
  let running: Promise<unknown> = Promise.resolve();
  let next: Promise<T> | undefined;
  let lastStart = -Infinity;
  return function coalesced() {
    next ??= (async () => {
      await running.catch(() => undefined);
      const wait = lastStart + spacingMs - Date.now();
      if (wait > 0) await sleep(wait);
      next = undefined; // calls from now on wait for the run after this one
      lastStart = Date.now();
      const result = run();
      running = result;
      return result;
    })();
    return next;
  };
}

/** In the supervisor: answer workers' requests for the aggregated metrics. */
export function serveClusterMetrics(intervalMs = AGGREGATE_INTERVAL_MS): void {
  const aggregator = new client.AggregatorRegistry();
  // The supervisor's own series, appended to the workers' sum.
  const own = new client.Registry();
  const aggregations = new client.Counter({
    name: 'registrar_metrics_aggregations_total',
    help: 'Times the supervisor gathered every worker\'s metrics (concurrent scrapes share one)',
    registers: [own],
  });
  const aggregate = coalesce(async () => {
    aggregations.inc();
    return `${await aggregator.clusterMetrics()}\n${await own.metrics()}`;
  }, intervalMs);
  cluster.on('message', (worker, message: MetricsRequest) => {
    if (message?.type !== 'metrics-request') return;
    aggregate().then(
      (text) => worker.isConnected() && worker.send({ type: 'metrics-response', id: message.id, text } satisfies MetricsResponse),
      (error: unknown) => worker.isConnected() && worker.send({ type: 'metrics-response', id: message.id, error: String(error) } satisfies MetricsResponse),
    );
  });
}

let askShared: (() => Promise<string>) | undefined;

/** In a worker: the cluster's metrics; outside a cluster (tests), this process's own. */
export async function readClusterMetrics(timeoutMs = 6_000): Promise<string> {
  if (!cluster.isWorker || !process.send) return client.register.metrics();
  askShared ??= coalesce(() => askSupervisor(timeoutMs), 0);
  return askShared();
}

function askSupervisor(timeoutMs: number): Promise<string> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the supervisor did not answer with metrics in time'));
    }, timeoutMs);
    function onMessage(message: MetricsResponse) {
      if (message?.type !== 'metrics-response' || message.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (message.text !== undefined) resolve(message.text);
      else reject(new Error(message.error ?? 'metrics aggregation failed'));
    }
    process.on('message', onMessage);
    process.send!({ type: 'metrics-request', id } satisfies MetricsRequest);
  });
}

export const METRICS_CONTENT_TYPE = client.register.contentType;
