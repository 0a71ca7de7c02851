// The one error type for broken rules. Each code is mapped to an HTTP problem answer in one
// table (src/http/problem.ts); the domain itself knows nothing of HTTP.
export type DomainErrorCode =
  | 'course-not-found'
  | 'registration-not-found'
  | 'webhook-not-found'
  | 'import-not-found'
  | 'invalid-import'
  | 'payload-too-large'
  | 'invalid-webhook'
  | 'course-exists'
  | 'course-full'
  | 'registration-closed'
  | 'capacity-below-enrolled'
  | 'invalid-course-window'
  | 'idempotency-key-reused'
  | 'idempotency-key-in-progress'
  | 'not-admitted'
  | 'queue-place-not-found'
  | 'course-has-no-queue'
  | 'queue-not-open'
  | 'queue-in-use'
  | 'invalid-queue'
  | 'offer-expired'
  | 'no-offer'
  | 'term-not-found'
  | 'term-exists'
  | 'unknown-term'
  | 'term-in-use'
  | 'limit-reached'
  | 'already-registered'
  | 'no-seat'
  | 'same-course'
  | 'registration-not-active'
  | 'swap-no-waitlist'
  | 'swap-wait-with-offers'
  | 'swap-already-waiting'
  | 'swaps-waiting'
  | 'unauthorized'
  | 'database-unavailable'
  | 'storage-full';

export class DomainError extends Error {
  readonly code: DomainErrorCode;

  constructor(code: DomainErrorCode, message: string, options?: ErrorOptions) {
    // A broken rule is an answer, not a bug: no stack trace is captured (measurable when a full
    // course refuses thousands of requests a second). A cause keeps its own.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = stackTraceLimit;
    this.code = code;
  }
}
DomainError.prototype.name = 'DomainError';
