// Owns the email side of a run as the bench's SMTP server saw it: a bounded wait for the
// expected number of distinct messages, and when each recipient's email arrived.
import { setTimeout as sleep } from 'node:timers/promises';
import { startProgress } from './progress.ts';
import type { ReceivedMessage, TestSmtpServer } from '../test/support/smtp-server.ts';

/** Messages received, a resent copy (same Message-ID) counted once. */
export function distinctMessages(smtp: TestSmtpServer): number {
  return new Set(smtp.messages.map((m) => m.messageId)).size;
}

/**
 * Waits until `count` distinct Message-IDs have arrived, the deadline passes, or `signal` aborts;
 * with `progress`, a progress line on stderr under that label.
 */
export async function waitForEmails(smtp: TestSmtpServer, count: number, timeoutMs: number, signal: AbortSignal, progress?: string): Promise<{ complete: boolean; distinct: number }> {
  const deadline = Date.now() + timeoutMs;
  const distinct = () => distinctMessages(smtp);
  let seen = distinct();
  const line = progress === undefined ? undefined : startProgress(progress, count, { unit: 'emails' });
  while (seen < count && Date.now() < deadline && !signal.aborted) {
    await sleep(50);
    // Counting distinct ids is a pass over every message: the count of messages says when to.
    seen = smtp.messages.length >= count ? distinct() : seen;
    line?.update(Math.min(smtp.messages.length, count));
  }
  line?.update(seen);
  line?.finish(signal.aborted ? 'interrupted' : seen < count ? `${count - seen} missing at the time limit` : undefined);
  if (signal.aborted) throw new Error('interrupted');
  return { complete: seen >= count, distinct: seen };
}

/** The first message to each recipient (lower-cased address). */
export function arrivalsByRecipient(messages: readonly ReceivedMessage[]): Map<string, ReceivedMessage> {
  const byRecipient = new Map<string, ReceivedMessage>();
  for (const message of messages) {
    for (const to of message.to) {
      const key = to.toLowerCase();
      const known = byRecipient.get(key);
      if (!known || message.receivedAt < known.receivedAt) byRecipient.set(key, message);
    }
  }
  return byRecipient;
}
