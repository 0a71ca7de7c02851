// Request and response schemas of the waiting-room routes, and the answer a place's row becomes.
import Type, { type Static } from 'typebox';
import type { QueuePlaceRow } from '../../db/queries/queue.queries.ts';
import { Email, PrintableText, Uuid } from './common.schemas.ts';

const PlaceStatus = Type.Union([
  Type.Literal('unverified'), Type.Literal('waiting'), Type.Literal('admitted'), Type.Literal('registered'),
  Type.Literal('expired'), Type.Literal('sold-out'), Type.Literal('left'), Type.Literal('closed'),
], {
  description: 'unverified (verifyEmail: until the link in its email is opened), waiting (until admitted), admitted (register before admittedUntil, with the admission), registered, expired (admitted but not registered in time: the place went on), sold-out (seats and waitlist gone), left, closed (registration closed at closesAt before this place registered: waiting, unverified or admitted then)',
});

const Count = Type.Union([Type.Integer(), Type.Null()]);

export const QueuePlace = Type.Object({
  id: Type.String({ format: 'uuid' }),
  course: Type.String(),
  name: Type.String({ description: 'as joined: the place\'s page registers with it' }),
  email: Type.String({ description: 'as joined: the place\'s page registers with it' }),
  status: PlaceStatus,
  position: Type.Union([Type.Integer(), Type.Null()], { description: '1 for the next place admitted; null until the places are ordered at opensAt, and once not waiting. Places ahead that left count until the queue passes them.' }),
  ahead: Count,
  estimatedWaitSeconds: Type.Union([Type.Integer(), Type.Null()], { description: 'position over the admissions per second of the last minute; null while nobody was admitted in it' }),
  joinedAt: Type.String(),
  admission: Type.Union([Type.String(), Type.Null()], { description: 'while admitted, to the holder of the queue token: send it as "admission" with POST /register' }),
  admittedUntil: Type.Union([Type.String(), Type.Null()]),
});

export type QueuePlace = Static<typeof QueuePlace>;

export function toQueuePlace(row: QueuePlaceRow, admission: string | null): QueuePlace {
  return {
    id: row.id,
    course: row.course_id,
    name: row.name,
    email: row.email,
    status: row.status,
    position: row.position,
    ahead: row.ahead,
    estimatedWaitSeconds: row.estimated_wait_seconds,
    joinedAt: new Date(row.joined_at).toISOString(),
    admission,
    admittedUntil: row.admitted_until === null ? null : new Date(row.admitted_until).toISOString(),
  };
}

export const JoinedQueuePlace = Type.Object({
  ...QueuePlace.properties,
  queueToken: Type.String({ description: 'given once: send it as Authorization: Bearer <queueToken> to see or leave this place' }),
});

/** The 200 of a second join: what the caller sent, nothing stored (the caller may not be that student). */
export const AlreadyQueued = Type.Object({
  course: Type.String(),
  email: Type.String({ description: 'the address as sent (trimmed)' }),
  alreadyQueued: Type.Literal(true),
}, { additionalProperties: false, description: 'this email already holds a place in this course\'s queue' });

export const JoinQueueBody = Type.Object({
  name: PrintableText(1, 200, '1-200 characters, without control characters'),
  email: Email,
}, { additionalProperties: false });

export const QueuePlaceParams = Type.Object({ id: Uuid });
