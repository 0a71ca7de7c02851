// Load shedding: under overload the service answers fast 503 `overloaded` with Retry-After
// instead of queueing without bound, while the requests already admitted finish. Two signals:
// the event loop falling behind (or the heap nearly full), through @fastify/under-pressure, and
// the queue for database connections growing past a bound. Operations routes (health, metrics,
// dashboard, docs) are never shed: they are how an operator sees the overload.
import underPressure from '@fastify/under-pressure';
import type { FastifyRequest } from 'fastify';
import type { RequestTracker } from '../observability/request-tracker.ts';
import type { App } from './app.ts';
import { problem, RETRY_AFTER_SECONDS, sendProblem } from './problem.ts';

export type SheddingOptions = {
  /** Event-loop delay above which new requests are refused. */
  maxEventLoopDelayMs: number;
  /** Requests queued for a database connection (beyond the pool) above which new ones are refused. */
  maxDatabaseBacklog: number;
  maxHeapUsedBytes?: number;
};

const NEVER_SHED = /^\/(health|metrics|dashboard|docs|openapi\.json|manage\/)/;

function exempt(request: FastifyRequest): boolean {
  return NEVER_SHED.test(request.url);
}

export async function registerLoadShedding(app: App, tracker: RequestTracker, options: SheddingOptions): Promise<void> {
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    maxHeapUsedBytes: options.maxHeapUsedBytes ?? 0,
    sampleInterval: 250,
    retryAfter: RETRY_AFTER_SECONDS,
    pressureHandler(request, reply, type) {
      if (exempt(request)) return undefined; // let it through
      tracker.countShed();
      const body = problem(503, 'overloaded', `The service is overloaded (${type}); retry in ${RETRY_AFTER_SECONDS} s`);
      reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).type('application/problem+json');
      return body as never;
    },
  });
  app.addHook('onRequest', async function shedOnDatabaseBacklog(request, reply) {
    if (exempt(request) || tracker.databaseBacklog() <= options.maxDatabaseBacklog) return;
    tracker.countShed();
    return sendProblem(reply, problem(503, 'overloaded', `The service is overloaded (database queue); retry in ${RETRY_AFTER_SECONDS} s`));
  });
}
