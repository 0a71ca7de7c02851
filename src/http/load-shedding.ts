// Load shedding: under overload the service answers fast 503 `overloaded` with Retry-After
// instead of queueing without bound, while the requests already admitted finish. Three signals:
// the event loop falling behind, the heap nearly full (src/observability/process-pressure.ts),
// and the queue for database connections growing past a bound. Operations routes (health,
// metrics, dashboard, docs) are never shed: they are how an operator sees the overload.
//
// A registration for a queued course is decided by its body, not shed blind (SPEC's "an admitted
// student never meets a 503"; issue 14). Overloaded, a POST /register announcing a body of at
// most DEFERRED_BODY_MAX_BYTES is parsed and validated first (a longer one, or one without a
// Content-Length, is shed unread, as any request). Then, if the database said within
// QUEUED_COURSE_MEMORY_MS that its course is queued (src/domain/full-courses.ts):
// - with an admission: not shed while fewer than maxAdmissionsInFlight of them (per course, in
//   this process) are in flight: the admission pacing bounds the real ones, but only the
//   database can tell a forged one (two index probes), so a bot sending made-up admissions
//   fills at most this bound. Over the bound, the admission is probed (one statement for the
//   probes arriving together, src/db/queries/queue.queries.ts): one of a place admitted now
//   passes, so forged ones filling the bound do not turn admitted students away; the rest get
//   503 as any request.
// - without: answered 403 not-admitted from memory, cheaper than a 503 and true. Once the
//   short memory (FULL_COURSE_RECHECK_MS) has lapsed, one such request per course at a time
//   goes to the database instead, so its answer renews both memories, or ends the long one when
//   the course has no queue any more.
// A deferred registration's body must arrive within DEFERRED_BODY_DEADLINE_MS: read under
// overload, a body trickled byte by byte would otherwise hold its connection and its place in the
// bounds until the server's 30 s request timeout. Past the deadline it is answered 408
// request-timeout and its connection closed.
//
// A student's read of their own waiting place (GET /queue/{id} with a token this worker's memory
// knows the place by: src/domain/queue-place-memory.ts) is not shed: while it waits it is answered
// from memory, as cheap as a 503, and once it has been passed (admitted, or sold out) it is the one
// read that tells the student so; the pacing waits for admitted students to register, so
// shedding that read would slow the admissions. Such reads are bounded by the places this worker
// took joins or reads for. Any other read is shed.
//
// A registration for a course not known to be queued (this worker started into the overload, or
// the course is new to it) is let through when it carries something shaped like an admission
// (ADMISSION_FORMAT: admissionTokenFor's 43 base64url characters), while fewer than
// maxAdmissionsInFlight of them, over all such courses together, are in flight: an admitted
// student does not wait for a refusal to teach this worker that the course is queued, and a bot
// naming made-up courses shares one bound. Any other registration is shed with 503 as
// everything else is.
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';
import type { Sql } from '../db/database.ts';
import { fullCoursesOf } from '../domain/full-courses.ts';
import { queuePlaceMemoryOf } from '../domain/queue-place-memory.ts';
import { admissionIsLive } from '../domain/queue.service.ts';
import { refuseWithoutAdmission } from '../domain/registration.service.ts';
import { watchProcessPressure } from '../observability/process-pressure.ts';
import type { RequestTracker } from '../observability/request-tracker.ts';
import type { App } from './app.ts';
import { bearerToken, bearerTokenHash } from './auth.ts';
import { domainProblem } from './error-handler.ts';
import { problem, RETRY_AFTER_SECONDS, sendProblem } from './problem.ts';

export type SheddingOptions = {
  /** Event-loop delay above which new requests are refused. */
  maxEventLoopDelayMs: number;
  /** Requests queued for a database connection (beyond the pool) above which new ones are refused. */
  maxDatabaseBacklog: number;
  /** Heap in use above which new requests are refused; unset: no bound. */
  maxHeapUsedBytes?: number;
  /** Registrations carrying an admission let through per queued course while overloaded;
   *  default DEFAULT_ADMISSIONS_IN_FLIGHT. */
  maxAdmissionsInFlight?: number;
};

/** Above the admitted students registering at once at a few thousand registrations a second
 *  (tens of milliseconds each), small beside a batch's worth of forged ones. */
const DEFAULT_ADMISSIONS_IN_FLIGHT = 128;

const NEVER_SHED = /^\/(health|metrics|dashboard|docs|openapi\.json|manage\/)/;

/** A registration's JSON is a few hundred bytes: one announced up to this is read before deciding. */
const DEFERRED_BODY_MAX_BYTES = 4096;

/** A small body on a working connection arrives in milliseconds; one slower is not waited for
 *  while overloaded. */
const DEFERRED_BODY_DEADLINE_MS = 1_000;

/** What admissionTokenFor (src/security/tokens.ts) gives: a SHA-256, base64url, unpadded. */
const ADMISSION_FORMAT = /^[A-Za-z0-9_-]{43}$/;

/** The key of admissionsInFlight counting the admissions for courses not known to be queued
 *  (no course id is empty). */
const NOT_KNOWN_QUEUED = '';

function exempt(request: FastifyRequest): boolean {
  return NEVER_SHED.test(request.url);
}

function isSmallRegistration(request: FastifyRequest): boolean {
  if (request.method !== 'POST' || request.routeOptions.url !== '/register') return false;
  const length = Number(request.headers['content-length'] ?? Number.NaN);
  return length <= DEFERRED_BODY_MAX_BYTES;
}

/** Registers the shedding hooks; returns the onSend hook POST /register runs first. */
export function registerLoadShedding(app: App, tracker: RequestTracker, sql: Sql, options: SheddingOptions): onSendHookHandler {
  const pressure = watchProcessPressure();
  app.addHook('onClose', async () => pressure.stop());
  const fullCourses = fullCoursesOf(sql);
  /** Registrations whose shedding waits for their body. */
  const deferred = new WeakSet<FastifyRequest>();
  /** Per queued course, the registration without an admission sent to the database to renew the memory. */
  const rechecks = new Map<string, FastifyRequest>();
  /** Per queued course, the registrations with an admission let through and not yet answered. */
  const admissionsInFlight = new Map<string, number>();
  const passedWithAdmission = new WeakMap<FastifyRequest, string>();
  const maxAdmissionsInFlight = options.maxAdmissionsInFlight ?? DEFAULT_ADMISSIONS_IN_FLIGHT;

  function overloadedBy(): string | undefined {
    if (pressure.eventLoopDelayMs() > options.maxEventLoopDelayMs) return 'event loop delay';
    if (options.maxHeapUsedBytes !== undefined && pressure.heapUsedBytes() > options.maxHeapUsedBytes) return 'memory';
    if (tracker.databaseBacklog() > options.maxDatabaseBacklog) return 'database queue';
    return undefined;
  }

  function shed(reply: FastifyReply, signal: string): FastifyReply {
    tracker.countShed();
    return sendProblem(reply, problem(503, 'overloaded', `The service is overloaded (${signal}); retry in ${RETRY_AFTER_SECONDS} s`));
  }

  app.addHook('onRequest', async function shedWhenOverloaded(request, reply) {
    if (exempt(request)) return;
    const signal = overloadedBy();
    if (signal === undefined) return;
    if (isSmallRegistration(request)) {
      deferred.add(request);
      return;
    }
    if (isOwnWaitingPlaceRead(request)) return;
    return shed(reply, signal);
  });

  /** A GET /queue/{id} with the token this worker's memory knows the place by. */
  function isOwnWaitingPlaceRead(request: FastifyRequest): boolean {
    if (request.method !== 'GET' || request.routeOptions.url !== '/queue/:id') return false;
    const token = bearerToken(request);
    const memory = queuePlaceMemoryOf(sql);
    return token !== undefined && memory !== undefined && memory.knows((request.params as { id: string }).id, bearerTokenHash(request, token));
  }

  app.addHook('preParsing', async function boundDeferredBody(request, reply, payload) {
    if (!deferred.has(request)) return payload;
    return withDeadline(payload, reply);
  });

  app.addHook('preHandler', async function shedRegistrationByCourse(request, reply) {
    if (!deferred.has(request)) return;
    const signal = overloadedBy();
    if (signal === undefined) return;
    const { course, admission } = request.body as { course?: string; admission?: string };
    if (course === undefined) return shed(reply, signal); // several courses: no admission applies
    const knownQueued = fullCourses.wasQueuedRecently(course);
    if (!knownQueued && (admission === undefined || !ADMISSION_FORMAT.test(admission))) return shed(reply, signal);
    if (admission !== undefined) {
      const key = knownQueued ? course : NOT_KNOWN_QUEUED;
      const inFlight = admissionsInFlight.get(key) ?? 0;
      if (inFlight >= maxAdmissionsInFlight) {
        // Over the bound (forged admissions can fill it): a live admission still passes, the
        // admission pacing bounds those; any other is shed.
        if (await admissionIsLive(sql, course, admission)) return;
        return shed(reply, signal);
      }
      admissionsInFlight.set(key, inFlight + 1);
      passedWithAdmission.set(request, key);
      return; // the database decides
    }
    if (fullCourses.isQueued(course)) return; // the route refuses from memory
    if (rechecks.has(course)) return sendProblem(reply, domainProblem(refuseWithoutAdmission(sql, course)));
    rechecks.set(course, request);
  });

  function endDeferred(request: FastifyRequest): void {
    const admitted = passedWithAdmission.get(request);
    if (admitted !== undefined) {
      passedWithAdmission.delete(request);
      const left = (admissionsInFlight.get(admitted) ?? 1) - 1;
      if (left > 0) admissionsInFlight.set(admitted, left);
      else admissionsInFlight.delete(admitted);
    }
    const course = (request.body as { course?: string } | undefined)?.course;
    if (course === undefined || rechecks.get(course) !== request) return;
    rechecks.delete(course);
    if (!fullCourses.isQueued(course)) fullCourses.forget(course); // the database did not say "queued" again
  }
  app.addHook('onResponse', async function endRegistrationRecheck(request) {
    endDeferred(request);
  });
  app.addHook('onRequestAbort', async function abandonRegistrationRecheck(request) {
    endDeferred(request);
  });
  // POST /register's own onSend hook, before its refusal hold (src/http/refusal-hold.ts): the
  // answer is decided, so a refusal held before it is written no longer counts against the
  // bounds. onResponse above still ends what a send never reached.
  return function endRegistrationDecision(request, _reply, payload, done) {
    if (deferred.has(request)) endDeferred(request);
    done(null, payload);
  };
}

/**
 * The body stream the parser reads instead of `payload`: the same bytes, or, if they have not all
 * arrived within DEFERRED_BODY_DEADLINE_MS, an error with status 408 (the parser's error is
 * answered as a problem: error-handler.ts), the rest left unread and the connection closed after
 * the answer.
 */
function withDeadline(payload: NodeJS.ReadableStream, reply: FastifyReply): NodeJS.ReadableStream {
  const bounded = new PassThrough();
  const timer = setTimeout(() => {
    payload.unpipe(bounded);
    reply.header('connection', 'close');
    bounded.destroy(Object.assign(new Error(`The request body did not arrive within ${DEFERRED_BODY_DEADLINE_MS} ms`), { statusCode: 408 }));
  }, DEFERRED_BODY_DEADLINE_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  payload.once('end', done);
  payload.once('error', (error) => {
    done();
    bounded.destroy(error); // pipe() passes data on, not errors
  });
  bounded.once('close', done);
  payload.pipe(bounded);
  return bounded;
}
