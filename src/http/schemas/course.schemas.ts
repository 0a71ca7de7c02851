// Request and response schemas of the course routes, and the answer a course's row becomes.
import Type, { type Static } from 'typebox';
import type { CourseRow } from '../../db/queries/courses.queries.ts';
import { CourseId, PrintableText, Timestamp } from './common.schemas.ts';

const Seats = Type.Integer({ minimum: 0, maximum: 10_000_000 });
const OptionalTimestamp = Type.Union([Timestamp, Type.Null()]);

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
    seatsLeft: Math.max(row.capacity - row.enrolled, 0),
    opensAt: row.opens_at?.toISOString() ?? null,
    closesAt: row.closes_at?.toISOString() ?? null,
  };
}

export const CreateCourseBody = Type.Object({
  id: CourseId,
  title: PrintableText(1, 200, '1-200 characters, without control characters'),
  capacity: Seats,
  waitlistCapacity: Type.Optional(Seats),
  opensAt: Type.Optional(OptionalTimestamp),
  closesAt: Type.Optional(OptionalTimestamp),
}, { additionalProperties: false });

export const PatchCourseBody = Type.Object({
  title: Type.Optional(PrintableText(1, 200, '1-200 characters, without control characters')),
  capacity: Type.Optional(Seats),
  waitlistCapacity: Type.Optional(Seats),
  opensAt: Type.Optional(OptionalTimestamp),
  closesAt: Type.Optional(OptionalTimestamp),
}, { additionalProperties: false, minProperties: 1 });

export const CourseParams = Type.Object({ id: CourseId });
