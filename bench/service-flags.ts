// Owns the flags every scenario that starts the service shares: its worker processes and its
// email settings, with the same defaults everywhere.
import { availableParallelism } from 'node:os';
import { DEFAULT_EMAIL_CONCURRENCY } from '../src/config.ts';

export const serviceFlags = {
  workers: { type: 'integer', description: 'HTTP worker processes of the service (WORKERS)', default: availableParallelism(), min: 1, max: 64 },
  'email-concurrency': { type: 'integer', description: 'the ceiling of SMTP sends in flight per process (EMAIL_CONCURRENCY)', default: DEFAULT_EMAIL_CONCURRENCY, min: 1, max: 1000 },
} as const;

/** The SMTP server's time per message; seed's story wants a slow one, the others none. */
export function emailDelayFlag(defaultMs: number) {
  return { type: 'integer', description: 'time the SMTP server takes per message', default: defaultMs, min: 0, max: 60_000 } as const;
}
