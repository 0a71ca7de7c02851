// The rules of the waiting room as the API and the job worker use them: joining (one place per
// course and email key), reading, verifying and leaving a place with one of its queue tokens, and
// the admission tick of every open queued course. Ranks, admissions, expiry, sold-out and the
// emails are decided in SQL under the course's queue locks (src/db/functions/queue-*.sql); this
// module prepares the inputs (the email key, the token hashes) and turns outcomes into results
// or DomainErrors.
import type { Sql } from '../db/database.ts';
import { type AdmitOutcome, admitFromQueue, findQueuePlace, isAdmissionLive, joinQueue, leaveQueuePlace, listOpenQueuedCourses, type QueuePlaceRow, verifyQueuePlace } from '../db/queries/queue.queries.ts';
import { admissionTokenFor, generateManageToken, hashToken } from '../security/tokens.ts';
import { DomainError } from './domain-error.ts';
import { queuePlaceMemoryOf } from './queue-place-memory.ts';
import { normalizeStudent } from './registration.ts';

export type JoinQueueInput = { course: string; name: string; email: string };

/** Like a duplicate registration, a second join of the same email shows nothing stored. */
export type JoinQueueResult =
  | { kind: 'created'; place: QueuePlaceRow; queueToken: string }
  | { kind: 'already-queued'; course: string; email: string };

/** Who is asking for a place: the admin, or whoever holds its queue token. */
export type QueueCredential = { kind: 'admin' } | { kind: 'queue-token'; token: string; tokenHash: Buffer };

/** A place as its holder sees it: with the admission token while admitted (the admin, who has
 * no queue token, sees none). */
export type QueuePlaceView = { place: QueuePlaceRow; admission: string | null };

/** Whether `admission` is the admission of a place of the course admitted now: what the database
 * will check again, under a lock, when the registration is decided. One probe, batched. */
export function admissionIsLive(sql: Sql, courseId: string, admission: string): Promise<boolean> {
  return isAdmissionLive(sql, courseId, hashToken(admission));
}

export async function joinCourseQueue(sql: Sql, input: JoinQueueInput): Promise<JoinQueueResult> {
  const { name, email, emailKey } = normalizeStudent(input);
  const queueToken = generateManageToken();
  const tokenHash = hashToken(queueToken);
  const memory = queuePlaceMemoryOf(sql);
  const before = memory?.viewBefore();
  const outcome = await joinQueue(sql, {
    courseId: input.course,
    name,
    email,
    emailKey,
    tokenHash,
    admissionHash: hashToken(admissionTokenFor(queueToken)),
  });
  switch (outcome.outcome) {
    case 'created':
      memory?.remember(outcome.place, tokenHash, before);
      return { kind: 'created', place: outcome.place, queueToken };
    case 'existing':
      return { kind: 'already-queued', course: input.course, email };
    case 'course-not-found':
      throw new DomainError('course-not-found', `There is no course "${input.course}"`);
    case 'no-queue':
      throw new DomainError('course-has-no-queue', `"${input.course}" has no queue: register with POST /register`);
    case 'queue-not-open':
      throw new DomainError('queue-not-open', `The queue of "${input.course}" does not take places yet (see its queue.joinFrom)`);
    case 'registration-closed':
      throw new DomainError('registration-closed', `Registration for "${input.course}" has closed`);
    case 'course-full':
      throw new DomainError('course-full', `"${input.course}" has no seats and no waitlist places left`);
    default:
      return outcome satisfies never;
  }
}

function placeNotFound(id: string): DomainError {
  return new DomainError('queue-place-not-found', `There is no queue place "${id}"`);
}

/**
 * Any of the place's tokens (the join answer's, or one from its emails) sees it. A waiting place
 * this process remembers is answered from memory when that shows what a read would
 * (src/domain/queue-place-memory.ts); else it is read, and remembered if it waits.
 */
export async function getQueuePlace(sql: Sql, id: string, credential: QueueCredential): Promise<QueuePlaceView> {
  const memory = credential.kind === 'admin' ? undefined : queuePlaceMemoryOf(sql);
  if (memory !== undefined && credential.kind === 'queue-token') {
    const remembered = memory.answer(id, credential.tokenHash);
    if (remembered !== undefined) return { place: remembered, admission: null };
  }
  const before = memory?.viewBefore();
  const found = await findQueuePlace(sql, id, credential.kind === 'admin' ? null : credential.tokenHash);
  if (!found) throw placeNotFound(id);
  const { place, token } = found;
  if (credential.kind === 'admin') return { place, admission: null };
  if (token === 'none') throw new DomainError('unauthorized', 'This token is not a queue token of this place');
  memory?.remember(place, credential.tokenHash, before);
  return { place, admission: place.status === 'admitted' ? admissionTokenFor(credential.token) : null };
}

/**
 * Confirms the place's email (verifyEmail): only a token from one of its emails (or the admin)
 * verifies, the join answer's proves nothing about the address. An unverified place becomes
 * waiting and enters the order; any other is answered as it is.
 */
export async function verifyQueueEmail(sql: Sql, id: string, credential: QueueCredential): Promise<QueuePlaceView> {
  const found = await findQueuePlace(sql, id, credential.kind === 'admin' ? null : credential.tokenHash);
  if (!found) throw placeNotFound(id);
  if (credential.kind === 'queue-token' && found.token !== 'emailed') {
    throw new DomainError('unauthorized', found.token === 'joined'
      ? 'The token of the join answer does not verify: open the link in the email sent to this address'
      : 'This token is not a queue token of this place');
  }
  const outcome = await verifyQueuePlace(sql, id);
  if (outcome.outcome === 'not-found') throw placeNotFound(id);
  const { place } = outcome;
  return { place, admission: credential.kind === 'queue-token' && place.status === 'admitted' ? admissionTokenFor(credential.token) : null };
}

/** Leaving twice is fine: the second call shows the place, left, again. */
export async function leaveCourseQueue(sql: Sql, id: string, credential: QueueCredential): Promise<QueuePlaceView> {
  await getQueuePlace(sql, id, credential);
  queuePlaceMemoryOf(sql)?.forget(id);
  const place = await leaveQueuePlace(sql, id);
  if (!place) throw placeNotFound(id);
  return { place, admission: null };
}

/** One admission tick of every open queued course, one transaction each; what each did. */
export async function admitFromQueues(sql: Sql): Promise<Map<string, AdmitOutcome>> {
  const outcomes = new Map<string, AdmitOutcome>();
  for (const courseId of await listOpenQueuedCourses(sql)) {
    outcomes.set(courseId, await admitFromQueue(sql, courseId));
  }
  return outcomes;
}
