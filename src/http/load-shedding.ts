// Load shedding: under overload the service answers fast 503 `overloaded` with Retry-After
// instead of queueing without bound, while the requests already admitted finish. Three signals:
// the event loop falling behind, the heap nearly full (src/observability/process-pressure.ts),
// and the queue for database connections growing past a bound. Operations routes (health,
// metrics, dashboard, docs) are never shed: they are how an operator sees the overload.
import type { FastifyRequest } from 'fastify';
import { watchProcessPressure } from '../observability/process-pressure.ts';
import type { RequestTracker } from '../observability/request-tracker.ts';
import type { App } from './app.ts';
import { problem, RETRY_AFTER_SECONDS, sendProblem } from './problem.ts';

export type SheddingOptions = {
  /** Event-loop delay above which new requests are refused. */
  maxEventLoopDelayMs: number;
  /** Requests queued for a database connection (beyond the pool) above which new ones are refused. */
  maxDatabaseBacklog: number;
  /** Heap in use above which new requests are refused; unset: no bound. */
  maxHeapUsedBytes?: number;
};

const NEVER_SHED = /^\/(health|metrics|dashboard|docs|openapi\.json|manage\/)/;

function exempt(request: FastifyRequest): boolean {
  return NEVER_SHED.test(request.url);
}

export function registerLoadShedding(app: App, tracker: RequestTracker, options: SheddingOptions): void {
  const pressure = watchProcessPressure();
  app.addHook('onClose', async () => pressure.stop());

  function overloadedBy(): string | undefined {
    if (pressure.eventLoopDelayMs() > options.maxEventLoopDelayMs) return 'event loop delay';
    if (options.maxHeapUsedBytes !== undefined && pressure.heapUsedBytes() > options.maxHeapUsedBytes) return 'memory';
    if (tracker.databaseBacklog() > options.maxDatabaseBacklog) return 'database queue';
    return undefined;
  }

  app.addHook('onRequest', async function shedWhenOverloaded(request, reply) {
    if (exempt(request)) return;
    const signal = overloadedBy();
    if (signal === undefined) return;
    tracker.countShed();
    return sendProblem(reply, problem(503, 'overloaded', `The service is overloaded (${signal}); retry in ${RETRY_AFTER_SECONDS} s`));
  });
}
