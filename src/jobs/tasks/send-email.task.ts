// The send_email task: each committed registration or queue event -> one email, once (deliver-email.ts).
// A job holds the events of one group commit (job-entries.ts). A temporary failure is retried by
// graphile-worker with backoff plus our jitter. Completing the job deletes it, and the manage
// tokens in its payload with it.
import type { Task } from 'graphile-worker';
import type { Sql } from '../../db/database.ts';
import type { JobLanes } from '../../observability/job-activity.ts';
import type { DeliverEmail } from '../email/deliver-email.ts';
import { type Limiter, runJobEntries } from '../job-entries.ts';
import { addRetryJitter } from '../job-retry.ts';

/** An entry: `{eventId, manageToken}` for a registration event, `{eventId, queueToken}` for a
 * queue place's event (the token made for its email); either token is what the email's link carries. */
function parsePayload(payload: unknown): { eventId: string | number; token: string } {
  const value = payload as { eventId?: unknown; manageToken?: unknown; queueToken?: unknown } | null;
  const token = value?.manageToken ?? value?.queueToken;
  if (!value || (typeof value.eventId !== 'string' && typeof value.eventId !== 'number') || typeof token !== 'string') {
    throw new Error(`send_email: malformed payload ${JSON.stringify(payload)}`);
  }
  return { eventId: value.eventId, token };
}

/**
 * `limit` bounds the emails in flight across every job of the process (the send window);
 * `lanes`, when given, hears each email's steps, its wait for a turn in `limit` included.
 */
export function createSendEmailTask(sql: Sql, deliverEmail: DeliverEmail, limit: Limiter, lanes?: JobLanes): Task {
  return async function sendEmail(payload, helpers) {
    const { attempts, max_attempts: maxAttempts } = helpers.job;
    const total = Array.isArray(payload) ? payload.length : 1;
    let index = 0;
    return runJobEntries(payload, async (entry) => {
      const reporter = lanes?.entry(String(helpers.job.id), index++, total);
      try {
        return await limit(() => {
          const { eventId, token } = parsePayload(entry);
          return deliverEmail(String(eventId), token, { attempts, maxAttempts }, (step) => reporter?.step(step));
        });
      } finally {
        reporter?.done();
      }
    }, () => addRetryJitter(sql, helpers.job.id, attempts));
  };
}
