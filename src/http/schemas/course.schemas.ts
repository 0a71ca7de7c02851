// Request and response schemas of the course routes, and the answer a course's row becomes.
import Type, { type Static } from 'typebox';
import type { CourseRow } from '../../db/queries/courses.queries.ts';
import { CourseId, PrintableText, Timestamp } from './common.schemas.ts';

const Seats = Type.Integer({ minimum: 0, maximum: 10_000_000 });
const OptionalTimestamp = Type.Union([Timestamp, Type.Null()]);
const QueueOrder = Type.Union([Type.Literal('random'), Type.Literal('arrival')], { description: 'random: a cryptographically random shuffle at opensAt, checkable from the seed shown after; arrival: join order' });

const QueueSettingsBody = Type.Object({
  order: QueueOrder,
  joinFrom: Type.Optional(Type.Union([Timestamp, Type.Null()], { description: 'places are taken from then on; null: any time before closesAt' })),
  admissionSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, default: 300, description: 'how long an admitted place may register' })),
  verifyEmail: Type.Optional(Type.Boolean({ default: false, description: 'true: a place counts (is ranked, can be admitted) only once the link in its email is opened (POST /queue/{id}/verify); until then it is unverified. Places keep their status when it changes.' })),
}, { additionalProperties: false });

const PromotionBody = Type.Union([Type.Literal('automatic'), Type.Literal('offer')], { description: 'automatic (default): a freed seat goes to waitlist position 1 at once; offer: it is held for them until offerHours have passed, and they accept or decline it (POST /registrations/{id}/offer/accept or /decline)' });
const OfferHoursBody = Type.Number({ minimum: 0.0001, maximum: 720, description: 'how long an offer holds its seat, in hours; fractions allowed (0.0001 h = 0.36 s), default 48' });

const TermBody = Type.Union([CourseId, Type.Null()], { description: 'the id of an existing term (POST /terms); null: none. Changes only while the course has no active registration' });

const QueueBody = Type.Union([QueueSettingsBody, Type.Null()], { description: 'a waiting room: while the course is open, POST /register needs an admission from it; null: no queue' });

const CourseQueue = Type.Object({
  order: QueueOrder,
  joinFrom: Type.Union([Type.String(), Type.Null()]),
  admissionSeconds: Type.Integer(),
  verifyEmail: Type.Boolean(),
  seedSha256: Type.Union([Type.String(), Type.Null()], { description: 'hex SHA-256 of the random order\'s seed, fixed before anyone joins' }),
  seed: Type.Union([Type.String(), Type.Null()], { description: 'hex; shown once the places are ordered: sorting places by SHA-256(seed || place id) gives their order' }),
});

export const Course = Type.Object({
  id: Type.String(),
  title: Type.String(),
  capacity: Type.Integer(),
  waitlistCapacity: Type.Integer(),
  enrolled: Type.Integer(),
  waitlisted: Type.Integer(),
  seatsLeft: Type.Integer(),
  opensAt: Type.Union([Type.String(), Type.Null()]),
  closesAt: Type.Union([Type.String(), Type.Null()]),
  queue: Type.Union([CourseQueue, Type.Null()]),
  term: Type.Union([Type.String(), Type.Null()], { description: 'the id of the course\'s term, whose per-student limit it shares' }),
  promotion: Type.Union([Type.Literal('automatic'), Type.Literal('offer')]),
  offerHours: Type.Number(),
  offered: Type.Integer({ description: 'seats held by open offers; seatsLeft does not count them' }),
});

export type Course = Static<typeof Course>;

export function toCourse(row: CourseRow): Course {
  return {
    id: row.id,
    title: row.title,
    capacity: row.capacity,
    waitlistCapacity: row.waitlist_capacity,
    enrolled: row.enrolled,
    waitlisted: row.waitlisted,
    seatsLeft: Math.max(row.capacity - row.enrolled - row.offered, 0),
    opensAt: row.opens_at?.toISOString() ?? null,
    closesAt: row.closes_at?.toISOString() ?? null,
    queue: row.queue_order === null ? null : {
      order: row.queue_order,
      joinFrom: row.queue_join_from?.toISOString() ?? null,
      admissionSeconds: row.queue_admission_seconds,
      verifyEmail: row.queue_verify_email,
      seedSha256: row.queue_order === 'random' ? (row.queue_seed_sha256?.toString('hex') ?? null) : null,
      seed: row.queue_order === 'random' ? (row.queue_seed?.toString('hex') ?? null) : null,
    },
    term: row.term_id,
    promotion: row.promotion,
    offerHours: row.offer_hours,
    offered: row.offered,
  };
}

export const CreateCourseBody = Type.Object({
  id: CourseId,
  title: PrintableText(1, 200, '1-200 characters, without control characters'),
  capacity: Seats,
  waitlistCapacity: Type.Optional(Seats),
  opensAt: Type.Optional(OptionalTimestamp),
  closesAt: Type.Optional(OptionalTimestamp),
  queue: Type.Optional(QueueBody),
  term: Type.Optional(TermBody),
  promotion: Type.Optional(PromotionBody),
  offerHours: Type.Optional(OfferHoursBody),
}, { additionalProperties: false });

export const PatchCourseBody = Type.Object({
  title: Type.Optional(PrintableText(1, 200, '1-200 characters, without control characters')),
  capacity: Type.Optional(Seats),
  waitlistCapacity: Type.Optional(Seats),
  opensAt: Type.Optional(OptionalTimestamp),
  closesAt: Type.Optional(OptionalTimestamp),
  queue: Type.Optional(QueueBody),
  term: Type.Optional(TermBody),
  promotion: Type.Optional(PromotionBody),
  offerHours: Type.Optional(OfferHoursBody),
}, { additionalProperties: false, minProperties: 1 });

export const CourseParams = Type.Object({ id: CourseId });
