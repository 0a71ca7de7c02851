// GET /queue/{id}/events: a place's live state as server-sent events, authenticated as
// GET /queue/{id} is (401 and 404 are problem answers before any stream starts). The streams of
// this process share one QueueStreamHub, closed before the server closes.
import { getQueuePlace } from '../../domain/queue.service.ts';
import { admissionForHolder } from '../../domain/queue-watch.service.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { RequestTracker } from '../../observability/request-tracker.ts';
import type { App, RouteDeps } from '../app.ts';
import { problem, sendProblem } from '../problem.ts';
import { QueueStreamHub } from '../queue-stream-hub.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { QueuePlaceParams } from '../schemas/queue.schemas.ts';

/**
 * The streams one HTTP worker holds at most: each is a socket and a few hundred bytes; past it
 * a page gets 503 with Retry-After and reconnects later (possibly to another worker).
 */
const MAX_STREAMS_PER_PROCESS = 20_000;

/** Last-Event-ID (the WHATWG SSE reconnection header): the number of the last message the page had. */
function firstMessageId(header: string | string[] | undefined): number {
  const last = typeof header === 'string' && /^\d{1,15}$/.test(header.trim()) ? Number(header.trim()) : 0;
  return last + 1;
}

export type QueueEventDeps = RouteDeps & { tracker: RequestTracker; metrics: Metrics | undefined };

export function registerQueueEventRoutes(app: App, { sql, auth, limit, tracker, metrics }: QueueEventDeps): void {
  const hub = new QueueStreamHub({
    sql,
    onCount: (streams) => metrics?.queueStreams.set({ worker: metrics.worker }, streams),
    onReadFailed: (error) => app.log.warn({ err: error }, 'queue streams: the places could not be read; the streams keep their last state until a read succeeds'),
  });
  app.addHook('preClose', async function closeQueueStreams() {
    hub.stop();
  });

  app.get('/queue/:id/events', {
    onRequest: limit('manage'),
    schema: {
      tags: ['queue'],
      summary: 'The place\'s live state as server-sent events (queue token or admin)',
      description: 'Each message is `id: <n>`, `event: place` and `data: <the JSON of GET /queue/{id}>`: the current state at once, then at most one message a second: at once when the status, the admission or `admittedUntil` changes, and when only the position (with `ahead` and the estimate) moved, once it fell by a tenth or 5 s after the last message; `: keep-alive` comments every 15 s. The stream ends after the message of a final status (registered, expired, sold-out, left, closed). A page that reconnects (sending Last-Event-ID or not) gets the current state at once; the ids count on from its Last-Event-ID.',
      security: [{ bearer: [] }],
      params: QueuePlaceParams,
      response: {
        200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...problemResponses(400, 401, 404, 429, 503),
      },
    },
  }, async function queueEventsRoute(request, reply) {
    const credential = auth.queueCredential(request);
    const { place } = await getQueuePlace(sql, request.params.id, credential);
    if (hub.size >= MAX_STREAMS_PER_PROCESS) {
      return sendProblem(reply, problem(503, 'overloaded', 'This worker holds as many place streams as it may; try again shortly'));
    }
    reply.hijack();
    tracker.forget(request); // a stream is not a request in flight (load shedding, the dashboard)
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: pass each message on at once
      'x-content-type-options': 'nosniff',
    });
    hub.open(reply.raw, place, { admission: admissionForHolder(credential), firstId: firstMessageId(request.headers['last-event-id']) });
  });
}
