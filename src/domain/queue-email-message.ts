// The waiting room's emails (joined, the link sent again, admitted, sold-out, closed), each with a link to
// the place's page carrying the email's own queue token. Pure, as email-message.ts: the same
// event always gives the same message, so a retry sends identical bytes under the same Message-ID.
import type { QueueEmailEvent } from '../db/queries/email.queries.ts';
import { type EmailMessage, layoutEmail } from './email-message.ts';

/** The place's page (GET /queue/{id}/page); the token sits in the fragment, which browsers never
 *  send to a server, so it stays out of access logs. */
export function queuePageLink(publicUrl: string, placeId: string, token: string): string {
  return `${publicUrl}/queue/${placeId}/page#token=${encodeURIComponent(token)}`;
}

/** A deadline as the email states it: UTC, to the second. */
function utc(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

const CONFIRM = 'Open the link below to confirm your address: until then your place does not count in the queue. If it was not you, ignore this email.';

function summary(event: QueueEmailEvent): { subject: string; headline: string; status: string; link: string } {
  const course = `${event.courseTitle} (${event.courseId})`;
  switch (event.kind) {
    case 'joined':
      return event.verifies
        ? { subject: `Confirm your place in the queue for ${event.courseTitle}`, headline: `Someone (maybe you) took a place in the queue for ${course} with this address. ${CONFIRM}`, status: 'unverified', link: 'Confirm and see your place' }
        : { subject: `You are in the queue for ${event.courseTitle}`, headline: `You have a place in the queue for ${course}. Your page shows your position as it moves; when your turn comes it lets you register, and we will write to you.`, status: 'waiting', link: 'See your place in the queue' };
    case 'link':
      // No status: it may have moved on since; the page shows it now.
      return {
        subject: `Your link to the queue for ${event.courseTitle}`,
        headline: `Someone (maybe you) tried to join the queue for ${course} again with this address. You hold a place already, so nothing changed; here is a fresh link to it.${event.verifies ? ` ${CONFIRM}` : ''}`,
        status: 'in the queue (the link shows your current status)',
        link: event.verifies ? 'Confirm and see your place' : 'See your place in the queue',
      };
    case 'admitted':
      return {
        subject: `Your turn: register for ${event.courseTitle} now`,
        headline: `Your turn in the queue for ${course} has come. Register before ${event.admittedUntil ? utc(event.admittedUntil) : 'your admission ends'}; after that your place passes to the next in line.`,
        status: event.admittedUntil ? `admitted until ${utc(event.admittedUntil)}` : 'admitted',
        link: 'Register now',
      };
    case 'sold-out':
      return {
        subject: `${event.courseTitle} is sold out`,
        headline: `Every seat and waitlist place of ${course} is taken, so the queue will not reach your place. We are sorry.`,
        status: 'sold out',
        link: 'See your place',
      };
    case 'closed':
      return {
        subject: `Registration for ${event.courseTitle} has closed`,
        headline: `Registration for ${course} closed before you could register from the queue, so your place has ended. We are sorry.`,
        status: 'closed',
        link: 'See your place',
      };
    default:
      return event.kind satisfies never;
  }
}

export function buildQueueEmail(event: QueueEmailEvent, options: { from: string; publicUrl: string; queueToken: string; messageDomain: string }): EmailMessage {
  const { link, ...content } = summary(event);
  const url = queuePageLink(options.publicUrl, event.placeId, options.queueToken);
  const messageId = `<registrar.queue.${event.placeId}.${event.kind}.${event.eventId}@${options.messageDomain}>`;
  return layoutEmail(options.from, event, { ...content, link: { label: link, url }, messageId });
}
