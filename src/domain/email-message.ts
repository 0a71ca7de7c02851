// The emails a registration gets (its own five and a waitlist offer's four), in plain text and HTML, and the layout every email shares
// (the waiting room's: queue-email-message.ts). Pure: the same event always gives the same
// message, so a retry sends identical bytes under the same Message-ID.
import type { EmailEvent } from '../db/queries/email.queries.ts';

export type EmailMessage = {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** RFC 5322 msg-id, stable per event: a receiver can drop a duplicate by it. */
  messageId: string;
};

/**
 * What turns messages into MIME off the event loop (the worker-thread pool): RFC 5322 text, one
 * per message, in order, as bytes. `threads`: how many batches may usefully run at once.
 */
export type EmailThreads = {
  readonly threads: number;
  composeMime(messages: EmailMessage[]): Promise<Buffer[]>;
};

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** The link that lets the student see or cancel; the token sits in the fragment, which
 *  browsers never send to a server, so it stays out of access logs. */
export function manageLink(publicUrl: string, registrationId: string, token: string): string {
  return `${publicUrl}/manage/${registrationId}#token=${encodeURIComponent(token)}`;
}

/** An offer's deadline as the email states it: UTC, to the second. */
function offerDeadline(event: EmailEvent): string {
  return event.offerUntil === null ? '(unknown)' : `${event.offerUntil.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function summary(event: EmailEvent): { subject: string; headline: string; status: string } {
  const course = `${event.courseTitle} (${event.courseId})`;
  switch (event.kind) {
    case 'enrolled':
      return { subject: `You are enrolled in ${event.courseTitle}`, headline: `You have a seat in ${course}.`, status: 'enrolled' };
    case 'waitlisted':
      return { subject: `You are on the waitlist for ${event.courseTitle}`, headline: `${course} is full; you are number ${event.waitlistPosition ?? '?'} on its waitlist. If a seat frees up, it goes to the first on the list, and we will write to you.`, status: `waitlisted, position ${event.waitlistPosition ?? '?'}` };
    case 'promoted':
      return { subject: `A seat opened up: you are enrolled in ${event.courseTitle}`, headline: `A seat in ${course} freed up and it is yours: you moved from the waitlist to enrolled.`, status: 'enrolled' };
    case 'cancelled':
      return { subject: `Your registration for ${event.courseTitle} is cancelled`, headline: `Your registration for ${course} is cancelled.`, status: 'cancelled' };
    case 'offered':
      return {
        subject: `A seat in ${event.courseTitle} is offered to you until ${offerDeadline(event)}`,
        headline: `A seat in ${course} freed up and it is held for you until ${offerDeadline(event)}. Accept it before then to enrol; if you decline or do not answer in time, it goes to the next student on the waitlist and your waitlist place ends.`,
        status: `waitlisted, a seat offered until ${offerDeadline(event)}`,
      };
    case 'accepted':
      return { subject: `You accepted the seat: you are enrolled in ${event.courseTitle}`, headline: `You accepted the seat offered in ${course}: it is yours.`, status: 'enrolled' };
    case 'declined':
      return { subject: `You declined the seat in ${event.courseTitle}`, headline: `You declined the seat offered in ${course}; it goes to the next student on the waitlist, and your registration is cancelled.`, status: 'cancelled' };
    case 'expired':
      return { subject: `The seat offered in ${event.courseTitle} has expired`, headline: `The seat held for you in ${course} was not accepted before its deadline; it goes to the next student on the waitlist, and your registration is cancelled.`, status: 'cancelled' };
    case 'reminder':
      // No status or waitlist position here: the position moves; the manage link shows it now.
      return {
        subject: `You are already registered for ${event.courseTitle}`,
        headline: `Someone (maybe you) tried to register this address for ${course} again. You are already registered, so nothing changed; if it was not you, you can ignore this email. Here is a fresh link to your registration.`,
        status: 'registered (the link shows your current status)',
      };
    default:
      return event.kind satisfies never;
  }
}

/** The student an email goes to and the course it is about. */
type Recipient = { email: string; name: string; courseId: string; courseTitle: string };

/** What an email says; the layout (greeting, headline, course and status, link, signature) is the same for every kind. */
export type EmailContent = {
  subject: string;
  headline: string;
  status: string;
  link: { label: string; url: string };
  /** Further links after the main one (an offer's accept and decline). */
  actions?: { label: string; url: string }[];
  messageId: string;
};

/** The plain text and HTML of an email; the HTML escapes every value. */
export function layoutEmail(from: string, to: Recipient, content: EmailContent): EmailMessage {
  const course = `${to.courseTitle} (${to.courseId})`;
  const text = [
    `Hello ${to.name},`,
    '',
    content.headline,
    '',
    `Course: ${course}`,
    `Status: ${content.status}`,
    '',
    `${content.link.label}: ${content.link.url}`,
    ...(content.actions ?? []).map((action) => `${action.label}: ${action.url}`),
    '',
    '-- Registrar',
    '',
  ].join('\n');
  const html = `<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello ${escapeHtml(to.name)},</p>
<p>${escapeHtml(content.headline)}</p>
<table>
<tr><th align="left">Course</th><td>${escapeHtml(to.courseTitle)} (${escapeHtml(to.courseId)})</td></tr>
<tr><th align="left">Status</th><td>${escapeHtml(content.status)}</td></tr>
</table>
<p><a href="${escapeHtml(content.link.url)}">${escapeHtml(content.link.label)}</a></p>
${(content.actions ?? []).map((action) => `<p><a href="${escapeHtml(action.url)}">${escapeHtml(action.label)}</a></p>\n`).join('')}<p>&mdash; Registrar</p>
</body></html>
`;
  return { from, to: to.email, subject: content.subject, text, html, messageId: content.messageId };
}

export function buildEmail(event: EmailEvent, options: { from: string; publicUrl: string; manageToken: string; messageDomain: string }): EmailMessage {
  const url = manageLink(options.publicUrl, event.registrationId, options.manageToken);
  const link = { label: 'See or cancel your registration', url };
  // The manage page reads the action from the fragment and asks before it answers.
  const actions = event.kind === 'offered'
    ? [{ label: 'Accept the seat', url: `${url}&action=accept` }, { label: 'Decline the seat', url: `${url}&action=decline` }]
    : [];
  const messageId = `<registrar.${event.registrationId}.${event.kind}.${event.eventId}@${options.messageDomain}>`;
  return layoutEmail(options.from, event, { ...summary(event), link, actions, messageId });
}
