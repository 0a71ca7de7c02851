// RFC 9457 problem answers: the one shape of every error this service sends, and the one table
// that maps domain error codes to them.
import type { FastifyReply } from 'fastify';
import type { DomainErrorCode } from '../domain/domain-error.ts';

export type ProblemSlug =
  | 'validation'
  | 'not-found'
  | 'unauthorized'
  | 'course-full'
  | 'registration-closed'
  | 'conflict'
  | 'rate-limited'
  | 'overloaded'
  | 'payload-too-large'
  | 'request-timeout'
  | 'headers-too-large'
  | 'unsupported-media-type'
  | 'not-admitted'
  | 'offer-expired'
  | 'no-offer'
  | 'limit-reached'
  | 'already-registered'
  | 'no-seat'
  | 'no-waitlist'
  | 'internal';

export type FieldError = { field: string; message: string };

export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  /** The course that refused a request for several courses. */
  course?: string;
};

const TITLES: Record<ProblemSlug, string> = {
  validation: 'The request is not valid',
  'not-found': 'Not found',
  unauthorized: 'Not authorized',
  'course-full': 'The course is full',
  'registration-closed': 'Registration is closed',
  conflict: 'Conflict',
  'rate-limited': 'Too many requests',
  overloaded: 'The service is overloaded',
  'payload-too-large': 'The request body is too large',
  'request-timeout': 'The request body did not arrive in time',
  'headers-too-large': 'The request headers are too large',
  'unsupported-media-type': 'The body is not of a type this route takes',
  'not-admitted': 'No valid admission from the queue',
  'offer-expired': 'The offer\'s deadline has passed',
  'no-offer': 'No open offer to answer',
  'limit-reached': 'The term\'s limit of courses per student is reached',
  'already-registered': 'Registered already',
  'no-seat': 'No free seat',
  'no-waitlist': 'The course has no waitlist',
  internal: 'Internal error',
};

export function problem(status: number, slug: ProblemSlug, detail: string, errors?: FieldError[]): Problem {
  return { type: `/problems/${slug}`, title: TITLES[slug], status, detail, ...(errors ? { errors } : {}) };
}

export const DOMAIN_PROBLEMS: Record<DomainErrorCode, { status: number; slug: ProblemSlug }> = {
  'course-not-found': { status: 404, slug: 'not-found' },
  'registration-not-found': { status: 404, slug: 'not-found' },
  'webhook-not-found': { status: 404, slug: 'not-found' },
  'import-not-found': { status: 404, slug: 'not-found' },
  'invalid-import': { status: 400, slug: 'validation' },
  'payload-too-large': { status: 413, slug: 'payload-too-large' },
  'invalid-webhook': { status: 400, slug: 'validation' },
  'course-exists': { status: 409, slug: 'conflict' },
  'course-full': { status: 409, slug: 'course-full' },
  'registration-closed': { status: 409, slug: 'registration-closed' },
  'capacity-below-enrolled': { status: 409, slug: 'conflict' },
  'invalid-course-window': { status: 400, slug: 'validation' },
  // draft-ietf-httpapi-idempotency-key-header: a key reused with another payload is 422.
  'idempotency-key-reused': { status: 422, slug: 'validation' },
  'idempotency-key-in-progress': { status: 409, slug: 'conflict' },
  // A queued course registers only with an admission: missing, forged, expired, used, or
  // another course's or student's, the answer is the same (it tells a guess nothing).
  'not-admitted': { status: 403, slug: 'not-admitted' },
  'queue-place-not-found': { status: 404, slug: 'not-found' },
  'course-has-no-queue': { status: 409, slug: 'conflict' },
  'queue-not-open': { status: 409, slug: 'registration-closed' },
  'queue-in-use': { status: 409, slug: 'conflict' },
  'offer-expired': { status: 409, slug: 'offer-expired' },
  'no-offer': { status: 409, slug: 'no-offer' },
  'invalid-queue': { status: 400, slug: 'validation' },
  'term-not-found': { status: 404, slug: 'not-found' },
  'term-exists': { status: 409, slug: 'conflict' },
  // A course naming a term that does not exist: the body is wrong, not the URL.
  'unknown-term': { status: 400, slug: 'validation' },
  'term-in-use': { status: 409, slug: 'conflict' },
  'limit-reached': { status: 409, slug: 'limit-reached' },
  // A multi-course request naming a course this email holds already, among courses it does not.
  'already-registered': { status: 409, slug: 'already-registered' },
  // Seats only ("waitlist": false) and a course without a free seat.
  'no-seat': { status: 409, slug: 'no-seat' },
  // A swap to the course the registration is in already.
  'same-course': { status: 400, slug: 'validation' },
  // A swap of a cancelled registration.
  'registration-not-active': { status: 409, slug: 'conflict' },
  // A swap with "wait": true, which this version does not do.
  'swap-no-waitlist': { status: 409, slug: 'no-waitlist' },
  'swap-wait-with-offers': { status: 409, slug: 'conflict' },
  'swap-already-waiting': { status: 409, slug: 'conflict' },
  'swaps-waiting': { status: 409, slug: 'conflict' },
  unauthorized: { status: 401, slug: 'unauthorized' },
  'database-unavailable': { status: 503, slug: 'overloaded' },
  // ENOSPC or EDQUOT under DATA_DIR: temporary, like a database out of disk (53100).
  'storage-full': { status: 503, slug: 'overloaded' },
};

/** Seconds a client should wait before retrying a 503; short, the database usually returns fast. */
export const RETRY_AFTER_SECONDS = 2;

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  if (body.status === 401) reply.header('www-authenticate', 'Bearer');
  if ((body.status === 503 || body.status === 429) && !reply.hasHeader('retry-after')) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  // The rest of a refused oversized body is not read: the connection cannot carry another request.
  if (body.status === 413) reply.header('connection', 'close');
  return reply.code(body.status).type('application/problem+json').send(body);
}
