// Request and response schemas of the term routes, and the answer a term's row becomes.
import Type, { type Static } from 'typebox';
import type { TermRow } from '../../db/queries/terms.queries.ts';
import { CourseId, PrintableText } from './common.schemas.ts';

const Limit = Type.Union([Type.Integer({ minimum: 1, maximum: 1000 }), Type.Null()], {
  description: 'active (enrolled or waitlisted) registrations a student (email) may hold in the term\'s courses; null: no limit. Lowering it cancels nobody: a student above it is refused new registrations until under it',
});

export const Term = Type.Object({
  id: Type.String(),
  title: Type.String(),
  maxCoursesPerStudent: Type.Union([Type.Integer(), Type.Null()]),
  courses: Type.Array(Type.String(), { description: 'the ids of the term\'s courses' }),
  createdAt: Type.String(),
});

export type Term = Static<typeof Term>;

export function toTerm(row: TermRow): Term {
  return {
    id: row.id,
    title: row.title,
    maxCoursesPerStudent: row.max_courses_per_student,
    courses: row.course_ids,
    createdAt: row.created_at.toISOString(),
  };
}

export const CreateTermBody = Type.Object({
  id: CourseId,
  title: PrintableText(1, 200, '1-200 characters, without control characters'),
  maxCoursesPerStudent: Type.Optional(Limit),
}, { additionalProperties: false });

export const PatchTermBody = Type.Object({
  title: Type.Optional(PrintableText(1, 200, '1-200 characters, without control characters')),
  maxCoursesPerStudent: Type.Optional(Limit),
}, { additionalProperties: false, minProperties: 1 });

export const TermParams = Type.Object({ id: CourseId });
