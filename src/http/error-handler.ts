// The one place errors become answers: DomainErrors by the table in problem.ts, validation and
// Fastify's own client errors by their status, an unreachable database or one short of disk or
// memory, or a DATA_DIR too full for an upload, as 503 `overloaded` with Retry-After, anything
// else as a logged, generic 500 with no stack or SQL in it. The database lines are throttled (one
// per code per 10 s, with how many were left out): on a full disk every request fails alike, and
// a rush must not flood the log.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import { DomainError } from '../domain/domain-error.ts';
import { errorCode, isDatabaseOutOfResources, isDatabaseUnavailable, isTransactionConflict } from '../db/postgres-errors.ts';
import { createLogThrottle } from '../observability/log-throttle.ts';
import { DOMAIN_PROBLEMS, type Problem, problem, sendProblem, type ProblemSlug } from './problem.ts';
import { toFieldErrors } from './validation.ts';

function slugForStatus(status: number): ProblemSlug {
  switch (status) {
    case 401:
    case 403:
      return 'unauthorized';
    case 404:
    case 405:
      return 'not-found';
    case 409:
      return 'conflict';
    case 408:
      return 'request-timeout';
    case 413:
      return 'payload-too-large';
    case 415:
      return 'unsupported-media-type';
    case 429:
      return 'rate-limited';
    case 503:
      return 'overloaded';
    default:
      return 'validation';
  }
}

const DATABASE_LOG_INTERVAL_MS = 10_000;
const databaseLines = createLogThrottle(DATABASE_LOG_INTERVAL_MS);

/** The problem answer of a broken rule, by the table in problem.ts. */
export function domainProblem(error: DomainError): Problem {
  const { status, slug } = DOMAIN_PROBLEMS[error.code];
  return problem(status, slug, error.message);
}

export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof DomainError) {
    if (error.code === 'storage-full') {
      // An operator must free space under DATA_DIR: logged (throttled) like a database out of disk.
      const suppressed = databaseLines.admit('storage-full');
      if (suppressed !== undefined) request.log.error({ err: error.cause, suppressed }, 'no space left under DATA_DIR for an upload');
    }
    return sendProblem(reply, domainProblem(error));
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const errors = toFieldErrors(fastifyError.validation as ErrorObject[], fastifyError.validationContext);
    const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
    return sendProblem(reply, problem(400, 'validation', detail || 'The request does not match its schema', errors));
  }
  const status = fastifyError.statusCode;
  if (status === 415) {
    // Fastify's own message ("Unsupported Media Type") does not say what to send instead.
    const sent = request.headers['content-type'];
    const what = sent === undefined ? 'A body without a Content-Type' : `Content-Type ${JSON.stringify(sent.slice(0, 100))}`;
    return sendProblem(reply, problem(415, 'unsupported-media-type', `${what} is not taken here: the API takes application/json (POST /imports: text/csv)`));
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's client errors (bad JSON, wrong content type, body too large) carry safe messages.
    return sendProblem(reply, problem(status, slugForStatus(status), fastifyError.message));
  }
  if (isDatabaseUnavailable(error)) {
    const suppressed = databaseLines.admit(`unavailable:${errorCode(error)}`);
    if (suppressed !== undefined) request.log.warn({ err: error, suppressed }, 'database unavailable');
    return sendProblem(reply, problem(503, 'overloaded', 'The database is not reachable right now; retry shortly'));
  }
  if (isDatabaseOutOfResources(error)) {
    // Nothing of the request was committed (its transaction rolled back); an operator must free
    // space or memory, so this is logged as an error, but the client is told to come back.
    // `suppressed`: the same errors left out of the log since the last line of this code.
    const suppressed = databaseLines.admit(`out-of-resources:${errorCode(error)}`);
    if (suppressed !== undefined) request.log.error({ err: error, suppressed }, 'database out of disk space or memory');
    return sendProblem(reply, problem(503, 'overloaded', 'The database cannot take more work right now; retry shortly'));
  }
  if (isTransactionConflict(error)) {
    // Rolled back for concurrent transactions after every attempt the retry policy allows: a rare
    // pile-up of conflicts on one course, logged, and the client told to come back.
    request.log.warn({ err: error }, 'transaction conflict after every attempt');
    return sendProblem(reply, problem(503, 'overloaded', 'The request met concurrent changes every time it was tried; retry shortly'));
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, problem(500, 'internal', 'Something went wrong on our side; it has been logged'));
}
