// Response schemas of the history routes, and the answer a history row becomes.
import Type, { type Static } from 'typebox';
import type { HistoryRow } from '../../db/queries/history.queries.ts';

export const HistoryEntry = Type.Object({
  id: Type.String({ description: 'the entry\'s id; also the cursor of the course\'s history' }),
  registration: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'the registration changed; null for a change of the course itself (capacity-changed)' }),
  course: Type.String(),
  kind: Type.Union([Type.Literal('enrolled'), Type.Literal('waitlisted'), Type.Literal('promoted'), Type.Literal('cancelled'),
    Type.Literal('offered'), Type.Literal('accepted'), Type.Literal('declined'), Type.Literal('expired'),
    Type.Literal('capacity-changed')], { description: 'capacity-changed: the course\'s capacity or waitlist capacity, by an admin; the promotions it caused are entries of their own' }),
  actor: Type.Union([Type.Literal('student'), Type.Literal('admin'), Type.Literal('import'), Type.Literal('system')], { description: 'who made the change' }),
  reason: Type.String({ description: 'why, e.g. "promoted: seat freed by a cancel"' }),
  waitlistPosition: Type.Union([Type.Integer(), Type.Null()], { description: 'the position given, for kind waitlisted' }),
  at: Type.String(),
});

export type HistoryEntry = Static<typeof HistoryEntry>;

export function toHistoryEntry(row: HistoryRow): HistoryEntry {
  return {
    id: row.id,
    registration: row.registration_id,
    course: row.course_id,
    kind: row.kind,
    actor: row.actor,
    reason: row.reason,
    waitlistPosition: row.waitlist_position,
    at: row.created_at.toISOString(),
  };
}

export const HistoryQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  // At most 18 digits: always within PostgreSQL's bigint, whose largest value has 19.
  after: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'the `next` cursor of the previous page' })),
}, { additionalProperties: false });

export const HistoryPage = Type.Object({
  items: Type.Array(HistoryEntry, { description: 'newest first' }),
  next: Type.Union([Type.String(), Type.Null()]),
});

export const RegistrationHistory = Type.Object({
  items: Type.Array(HistoryEntry, { description: 'newest first' }),
});
