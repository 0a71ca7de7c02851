// Builds the HTTP application (no listen): plugins, routes, the error handler. The same build
// serves the worker processes and the tests.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Sql } from '../db/database.ts';
import { publishActivity } from '../observability/cluster-state.ts';
import type { Metrics } from '../observability/metrics.ts';
import { RequestTracker } from '../observability/request-tracker.ts';
import { createDashboardSessions } from './dashboard-session.ts';
import { registerLoadShedding, type SheddingOptions } from './load-shedding.ts';
import { createRateLimiter } from './rate-limit.ts';
import { createRefusalHold } from './refusal-hold.ts';
import { observeFastRefusals } from '../domain/full-courses.ts';
import { enableQueuePlaceMemory } from '../domain/queue-place-memory.ts';
import { observeRegistrationBatches } from '../domain/registration.service.ts';
import { observeSwapLockRetries } from '../domain/swap.service.ts';
import type { App } from './app.ts';
import { createAuth } from './auth.ts';
import type { TrustProxy } from '../security/trust-proxy.ts';
import { trustProxyFunction, unknownForwardedClient } from './client-address.ts';
import { answerClientError } from './client-errors.ts';
import { handleError } from './error-handler.ts';
import { openApiOptions } from './openapi.ts';
import { problem, sendProblem } from './problem.ts';
import { registerAdminRoutes } from './routes/admin.routes.ts';
import { registerCourseRoutes } from './routes/courses.routes.ts';
import { registerDashboardRoutes } from './routes/dashboard.routes.ts';
import { registerHealthRoutes } from './routes/health.routes.ts';
import { registerHistoryRoutes } from './routes/history.routes.ts';
import { registerOfferRoutes } from './routes/offers.routes.ts';
import { type ImportLimits, registerImportRoutes } from './routes/imports.routes.ts';
import { registerManagePageRoutes } from './routes/manage-page.routes.ts';
import { registerOperationsRoutes } from './routes/operations.routes.ts';
import { registerQueueEventRoutes } from './routes/queue-events.routes.ts';
import { registerQueuePageRoutes } from './routes/queue-page.routes.ts';
import { registerQueueRoutes } from './routes/queue.routes.ts';
import { registerRegistrationRoutes } from './routes/registrations.routes.ts';
import { registerSwapRoutes } from './routes/swap.routes.ts';
import { registerTermRoutes } from './routes/terms.routes.ts';
import { registerWebhookRoutes } from './routes/webhooks.routes.ts';
import { validatorCompiler } from './validation.ts';

export type ServerOptions = {
  sql: Sql;
  adminToken: string;
  logger?: FastifyBaseLogger | false;
  /** This process's Prometheus metrics; unset in tests that do not look at them. */
  metrics?: Metrics | undefined;
  /** Database connections of this process: requests beyond it wait for one (for the metrics). */
  poolSize?: number;
  /** Where uploads go and how large they may be; unset: DATA_DIR=./data, 256 MiB. */
  imports?: ImportLimits;
  /** Accept webhook URLs on loopback and private networks (tests, closed networks). */
  allowPrivateWebhooks?: boolean;
  /** Per-client limit on register, manage and login routes; 0 or unset: none. */
  rateLimitPerMinute?: number;
  /** Whose X-Forwarded-For to believe for the client address (TRUST_PROXY); unset: nobody's. */
  trustProxy?: TrustProxy;
  /** Bearer token for /metrics from non-loopback clients; unset: loopback only. */
  metricsToken?: string | undefined;
  /** Load shedding bounds; unset (tests of other things): nothing is shed. */
  shedding?: SheddingOptions;
  /** Mark the dashboard cookie Secure (when PUBLIC_URL is https). */
  secureCookies?: boolean;
  /** JSON bodies here are a few hundred bytes; anything near this is abuse. */
  bodyLimitBytes?: number;
  /** PUBLIC_URL: the OpenAPI document's server; unset: "/", wherever the document was fetched from. */
  publicUrl?: string;
  /** POST /register's 403 not-admitted answers are written this long after they are decided
   *  (src/http/refusal-hold.ts); 0 or unset (tests of other things): at once. */
  notAdmittedHoldMs?: number;
  /** Answer waiting places from this process's memory (src/domain/queue-place-memory.ts): up to
   *  1 s behind the database. Unset (tests that read their own writes at once): always read. */
  queuePlaceMemory?: boolean;
};

/** Wrong admin or metrics tokens a client may send a minute when RATE_LIMIT_PER_MINUTE is 0. */
const FAILURES_PER_MINUTE_WITHOUT_LIMIT = 60;

/**
 * Logs once per process, at the first request a proxy forwards while TRUST_PROXY does not trust
 * it: every client then has the proxy's address (one rate-limit budget for all of them).
 */
function warnOfUntrustedProxy(app: App, trustProxy: TrustProxy): void {
  const forwardsUnknown = unknownForwardedClient(trustProxy);
  let warned = false;
  app.addHook('onRequest', function untrustedProxy(request, _reply, done) {
    if (!warned && forwardsUnknown(request)) {
      warned = true;
      request.log.warn({ peer: request.socket.remoteAddress }, 'a proxy forwards requests (X-Forwarded-For or Forwarded) but TRUST_PROXY does not trust it: every client has its address; set TRUST_PROXY to the proxies\' addresses');
    }
    done();
  });
}

export async function buildServer(options: ServerOptions): Promise<App> {
  const app: App = Fastify({
    loggerInstance: options.logger || undefined,
    logger: options.logger === false ? false : undefined,
    // One log line per request would cost more than the request; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    // Deliberate timeouts: a client that trickles its headers or body is cut off.
    requestTimeout: 30_000,
    connectionTimeout: 30_000,
    keepAliveTimeout: 10_000,
    return503OnClosing: true,
    trustProxy: trustProxyFunction(options.trustProxy ?? false),
    // A URL that cannot be decoded (e.g. /courses/%ZZ) or a path parameter over the router's
    // length limit: answered as a problem like every other error, not Fastify's own JSON.
    frameworkErrors: handleError,
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  app.setValidatorCompiler(validatorCompiler);
  // The API takes JSON only; a text/plain body is 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(function notFound(request, reply) {
    return sendProblem(reply, problem(404, 'not-found', `No route ${request.method} ${request.url.split('?')[0]}`));
  });

  await app.register(swagger, openApiOptions({ publicUrl: options.publicUrl }));
  // staticCSP: the docs pages get a Content-Security-Policy with hashes of their own scripts.
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.addHook('onSend', async function securityHeaders(_request, reply) {
    reply.header('x-content-type-options', 'nosniff');
    if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer');
  });
  app.get('/openapi.json', { schema: { hide: true } }, async function openApiRoute() {
    return app.swagger();
  });

  const tracker = new RequestTracker({ metrics: options.metrics, poolSize: options.poolSize ?? 10 });
  const metrics = options.metrics;
  if (metrics) {
    observeRegistrationBatches(options.sql, (size) => metrics.registrationBatch.observe(size));
    observeFastRefusals(options.sql, () => metrics.fastRefusals.inc());
    observeSwapLockRetries(options.sql, (operation) => metrics.swapLockRetries.inc({ operation }));
  }
  tracker.attach(app);
  if (options.queuePlaceMemory) enableQueuePlaceMemory(options.sql);
  const registrationDecided = options.shedding ? registerLoadShedding(app, tracker, options.sql, options.shedding) : undefined;
  const activity = publishActivity(() => tracker.snapshot());
  app.addHook('onClose', async () => activity.stop());

  const perMinute = options.rateLimitPerMinute ?? 0;
  const notSaved = (error: unknown) => app.log.warn({ err: error }, 'rate-limit counts not saved');
  const limiter = perMinute > 0 ? createRateLimiter(options.sql, perMinute, notSaved) : undefined;
  // Wrong admin and metrics tokens have a budget even when the per-client limit is off (a load
  // test turns off the registration limits, and a guesser does not care).
  const guard = limiter ?? createRateLimiter(options.sql, FAILURES_PER_MINUTE_WITHOUT_LIMIT, notSaved);
  app.addHook('onClose', () => guard.stop());
  const trustProxy = options.trustProxy ?? false;
  warnOfUntrustedProxy(app, trustProxy);
  const refusalHold = options.notAdmittedHoldMs ? createRefusalHold(options.notAdmittedHoldMs) : undefined;
  // Before the requests in flight are waited for: a held refusal is written at once.
  if (refusalHold) app.addHook('preClose', async () => refusalHold.releaseAll());
  const deps = {
    sql: options.sql,
    auth: createAuth(options.adminToken, guard.failures('admin-auth')),
    // No limit, no hook at all: not even an empty one on every request.
    limit: (routeClass: 'register' | 'queue' | 'manage' | 'login') => (limiter ? [limiter.hook(routeClass)] : []),
    registerOnSend: [...(registrationDecided ? [registrationDecided] : []), ...(refusalHold ? [refusalHold.hook] : [])],
  };
  registerHealthRoutes(app, deps);
  registerTermRoutes(app, deps);
  registerCourseRoutes(app, deps);
  registerRegistrationRoutes(app, deps);
  registerHistoryRoutes(app, deps);
  registerOfferRoutes(app, deps);
  registerSwapRoutes(app, deps);
  registerQueueRoutes(app, deps);
  registerQueueEventRoutes(app, { ...deps, tracker, metrics });
  registerWebhookRoutes(app, deps, { allowPrivate: options.allowPrivateWebhooks ?? false });
  registerImportRoutes(app, deps, options.imports ?? { dataDir: './data', maxBytes: 256 * 1024 * 1024 });
  registerAdminRoutes(app, deps);
  await registerManagePageRoutes(app);
  await registerQueuePageRoutes(app);
  registerOperationsRoutes(app, { metricsToken: options.metricsToken, failures: guard.failures('metrics-auth'), trustProxy });
  await registerDashboardRoutes(app, {
    sql: options.sql,
    adminToken: options.adminToken,
    sessions: createDashboardSessions(options.adminToken, options.secureCookies ?? false),
    clusterView: () => activity.view(),
    tracker,
    limitLogin: deps.limit('login'),
  });
  await app.ready();
  return app;
}
