// Request and response schemas of the registration routes, and the answer a registration's row becomes.
import Type, { type Static } from 'typebox';
import type { RegistrationRow } from '../../db/queries/registrations.queries.ts';
import { MAX_COURSES_PER_REQUEST } from '../../domain/multi-course-registration.service.ts';
import { CourseId, Email, PrintableText, Uuid } from './common.schemas.ts';

const Status = Type.Union([Type.Literal('enrolled'), Type.Literal('waitlisted'), Type.Literal('cancelled')]);

export const Registration = Type.Object({
  id: Type.String({ format: 'uuid' }),
  course: Type.String(),
  name: Type.String(),
  email: Type.String(),
  status: Status,
  waitlistPosition: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.String(),
  offer: Type.Union([Type.Object({ until: Type.String({ description: 'the deadline: accept before it' }) }), Type.Null()], { description: 'a seat held for this waitlisted registration (a course with promotion "offer"): POST /registrations/{id}/offer/accept or /decline' }),
});

export type Registration = Static<typeof Registration>;

export function toRegistration(row: RegistrationRow): Registration {
  return {
    id: row.id,
    course: row.course_id,
    name: row.name,
    email: row.email,
    status: row.status,
    waitlistPosition: row.waitlist_position === null ? null : Number(row.waitlist_position),
    createdAt: new Date(row.created_at).toISOString(),
    offer: row.offer_until === null || row.offer_until === undefined ? null : { until: new Date(row.offer_until).toISOString() },
  };
}

export const CreatedRegistration = Type.Object({
  ...Registration.properties,
  manageToken: Type.String({ description: 'given once: keep it to see or cancel this registration' }),
});

/** The 200 of a duplicate: what the caller sent, nothing stored (the caller may not be that student). */
export const AlreadyRegistered = Type.Object({
  course: Type.String(),
  email: Type.String({ description: 'the address as sent (trimmed)' }),
  alreadyRegistered: Type.Literal(true),
}, { additionalProperties: false, description: 'this email already holds an active registration for this course; a reminder with a fresh manage link goes to it (at most once per 10 minutes)' });

/** A request for several courses: 201 with every registration, all or nothing. */
export const CreatedRegistrations = Type.Object({
  registrations: Type.Array(CreatedRegistration, { description: 'one per course, in the request\'s order' }),
});

/** The 200 of a request for several courses that this email holds every one of already. */
export const AlreadyRegisteredCourses = Type.Object({
  courses: Type.Array(Type.String()),
  email: Type.String({ description: 'the address as sent (trimmed)' }),
  alreadyRegistered: Type.Literal(true),
}, { additionalProperties: false, description: 'this email already holds an active registration for every course of the request; reminders go to it' });

/** One student for one course: a row of an import (src/runtime/csv-chunk.thread.ts). */
export const RegisterBody = Type.Object({
  name: PrintableText(1, 200, '1-200 characters, without control characters'),
  email: Email,
  course: CourseId,
  admission: Type.Optional(PrintableText(1, 256, 'for a course with a queue: the admission of your admitted place (GET /queue/{id}); without a valid one, 403 not-admitted')),
}, { additionalProperties: false });

/** POST /register: course or courses; not both (checked by the route). */
export const RegisterRequestBody = Type.Object({
  ...RegisterBody.properties,
  course: Type.Optional(CourseId),
  courses: Type.Optional(Type.Array(CourseId, {
    minItems: 1, maxItems: MAX_COURSES_PER_REQUEST, uniqueItems: true,
    description: `instead of course: 1-${MAX_COURSES_PER_REQUEST} distinct courses, registered all or nothing`,
  })),
  waitlist: Type.Optional(Type.Boolean({ description: 'false: seats only; a course without a free seat refuses the request (default true)' })),
}, { additionalProperties: false, anyOf: [{ required: ['course'] }, { required: ['courses'] }] });

export const RegisterHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'a unique key per logical request (e.g. a UUID); a retry with the same key gets the original answer' })),
});

export const RegistrationParams = Type.Object({ id: Uuid });

export const RegistrationListQuery = Type.Object({
  status: Type.Optional(Status),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  // At most 18 digits: always within PostgreSQL's bigint, whose largest value has 19.
  after: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'the `next` cursor of the previous page' })),
}, { additionalProperties: false });

export const RegistrationPage = Type.Object({
  items: Type.Array(Registration),
  next: Type.Union([Type.String(), Type.Null()]),
});
