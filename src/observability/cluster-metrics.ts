// /metrics for the whole cluster. Any HTTP worker may be asked; it asks the supervisor, which
// gathers every worker's registry with prom-client's AggregatorRegistry and sends back the sum.
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import client from 'prom-client';

type MetricsRequest = { type: 'metrics-request'; id: string };
type MetricsResponse = { type: 'metrics-response'; id: string; text?: string; error?: string };

/** In the supervisor: answer workers' requests for the aggregated metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new client.AggregatorRegistry();
  cluster.on('message', (worker, message: MetricsRequest) => {
    if (message?.type !== 'metrics-request') return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: 'metrics-response', id: message.id, text } satisfies MetricsResponse),
      (error: unknown) => worker.isConnected() && worker.send({ type: 'metrics-response', id: message.id, error: String(error) } satisfies MetricsResponse),
    );
  });
}

/** In a worker: the cluster's metrics; outside a cluster (tests), this process's own. */
export async function readClusterMetrics(timeoutMs = 6_000): Promise<string> {
  if (!cluster.isWorker || !process.send) return client.register.metrics();
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
