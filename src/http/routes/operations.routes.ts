// Operations: /metrics (Prometheus text, aggregated over every worker process of this instance).
// Open to loopback clients (a Prometheus or an operator on this machine); from anywhere else it
// needs `Authorization: Bearer <METRICS_TOKEN>`, and without METRICS_TOKEN it is not served there.
// A loopback peer that forwards for someone (X-Forwarded-For, Forwarded) that TRUST_PROXY does not
// let us identify is a proxy on this machine, its client anywhere: not loopback here.
// Wrong tokens use up a per-client budget, as wrong admin tokens do.
import { METRICS_CONTENT_TYPE, readClusterMetrics } from '../../observability/cluster-metrics.ts';
import { secretsMatch } from '../../security/tokens.ts';
import type { TrustProxy } from '../../security/trust-proxy.ts';
import type { App } from '../app.ts';
import { bearerToken } from '../auth.ts';
import { isLoopback, unknownForwardedClient } from '../client-address.ts';
import { problem, sendProblem } from '../problem.ts';
import type { FailureBudget } from '../rate-limit.ts';

type OperationsOptions = { metricsToken: string | undefined; failures: FailureBudget; trustProxy: TrustProxy };

export function registerOperationsRoutes(app: App, options: OperationsOptions): void {
  const { metricsToken, failures } = options;
  const forwardsUnknown = unknownForwardedClient(options.trustProxy);
  app.get('/metrics', {
    onRequest: async function metricsAccess(request, reply) {
      if (isLoopback(request.ip) && !forwardsUnknown(request)) return undefined;
      if (metricsToken === undefined) {
        return sendProblem(reply, problem(401, 'unauthorized', '/metrics answers loopback clients only; set METRICS_TOKEN to scrape it from elsewhere with Authorization: Bearer <METRICS_TOKEN>'));
      }
      if (failures.refused(request, reply)) return reply;
      const token = bearerToken(request);
      if (token === undefined) return sendProblem(reply, problem(401, 'unauthorized', '/metrics needs Authorization: Bearer <METRICS_TOKEN> from this address'));
      if (!secretsMatch(token, metricsToken)) {
        failures.failed(request);
        return sendProblem(reply, problem(401, 'unauthorized', 'The metrics token is not valid'));
      }
      return undefined;
    },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics, summed over all worker processes (per-process series carry a worker label); loopback, or the METRICS_TOKEN bearer token',
      // No credential from loopback ({}), METRICS_TOKEN from anywhere else.
      security: [{}, { metricsToken: [] }],
    },
  }, async function metricsRoute(request, reply) {
    try {
      return reply.type(METRICS_CONTENT_TYPE).send(await readClusterMetrics());
    } catch (error) {
      request.log.warn({ err: error }, 'metrics aggregation failed');
      return sendProblem(reply, problem(503, 'overloaded', 'The workers did not all answer with their metrics in time'));
    }
  });
}
