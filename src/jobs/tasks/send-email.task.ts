// The send_email task: one committed registration event -> one email, once (deliver-email.ts).
// A temporary failure is retried by graphile-worker with backoff plus our jitter. Completing the
// job deletes it, and the manage token in its payload with it.
import type { Task } from 'graphile-worker';
import type { Sql } from '../../db/database.ts';
import type { DeliverEmail } from '../email/deliver-email.ts';
import { addRetryJitter } from '../job-retry.ts';

export type SendEmailPayload = { eventId: string | number; manageToken: string };

function parsePayload(payload: unknown): SendEmailPayload {
  const value = payload as Partial<SendEmailPayload> | null;
  if (!value || (typeof value.eventId !== 'string' && typeof value.eventId !== 'number') || typeof value.manageToken !== 'string') {
    throw new Error(`send_email: malformed payload ${JSON.stringify(payload)}`);
  }
  return { eventId: value.eventId, manageToken: value.manageToken };
}

export function createSendEmailTask(sql: Sql, deliverEmail: DeliverEmail): Task {
  return async function sendEmail(payload, helpers) {
    const { eventId, manageToken } = parsePayload(payload);
    const { attempts, max_attempts: maxAttempts } = helpers.job;
    try {
      await deliverEmail(String(eventId), manageToken, { attempts, maxAttempts });
    } catch (error) {
      await addRetryJitter(sql, helpers.job.id, attempts);
      throw error;
    }
  };
}
