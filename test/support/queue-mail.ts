// The waiting room's emails as a student's mail client reads them: the link to the place's page
// and the token of its own that the link carries.
import assert from 'node:assert/strict';
import type { ReceivedMessage } from './smtp-server.ts';

/** The place id and token of the page link in a message (quoted-printable undone). */
export function pageLink(message: Pick<ReceivedMessage, 'raw' | 'subject'>): { id: string; token: string } {
  const decoded = message.raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const match = /\/queue\/([0-9a-f-]{36})\/page#token=([A-Za-z0-9_%-]+)/.exec(decoded);
  assert.ok(match, `a link to the place's page in "${message.subject}"`);
  return { id: match[1]!, token: decodeURIComponent(match[2]!) };
}
