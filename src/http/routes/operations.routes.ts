// Operations: /metrics (Prometheus text, aggregated over every worker process of this instance).
import { METRICS_CONTENT_TYPE, readClusterMetrics } from '../../observability/cluster-metrics.ts';
import type { App } from '../app.ts';
import { problem, sendProblem } from '../problem.ts';

export function registerOperationsRoutes(app: App): void {
  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics, summed over all worker processes (per-process series carry a worker label)' },
  }, async function metricsRoute(request, reply) {
    try {
      return reply.type(METRICS_CONTENT_TYPE).send(await readClusterMetrics());
    } catch (error) {
      request.log.warn({ err: error }, 'metrics aggregation failed');
      return sendProblem(reply, problem(503, 'overloaded', 'The workers did not all answer with their metrics in time'));
    }
  });
}
