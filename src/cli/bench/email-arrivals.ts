// Owns the email side of a run as the bench's SMTP server saw it: a bounded wait for the
// expected number of distinct messages, and when each recipient's email arrived.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReceivedMessage, TestSmtpServer } from './smtp-server.ts';

/** Waits until `count` distinct Message-IDs have arrived, the deadline passes, or `signal` aborts. */
/** Messages received, a resent copy (same Message-ID) counted once. */
export function distinctMessages(smtp: TestSmtpServer): number {
  return new Set(smtp.messages.map((m) => m.messageId)).size;
}

export async function waitForEmails(smtp: TestSmtpServer, count: number, timeoutMs: number, signal: AbortSignal): Promise<{ complete: boolean; distinct: number }> {
  const deadline = Date.now() + timeoutMs;
  const distinct = () => distinctMessages(smtp);
  let seen = distinct();
  while (seen < count && Date.now() < deadline && !signal.aborted) {
    await sleep(50);
    seen = smtp.messages.length >= count ? distinct() : seen;
  }
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
