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
  | 'unauthorized'
  | 'database-unavailable';

export class DomainError extends Error {
  override name = 'DomainError';
  readonly code: DomainErrorCode;

  constructor(code: DomainErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
