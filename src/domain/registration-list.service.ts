// Reading a course's registrations for the admin: paged in arrival order, or all of them as a
// stream for the CSV export. The cursor is the arrival sequence of the last row seen.
import type { Sql } from '../db/database.ts';
import { findCourse } from '../db/queries/courses.queries.ts';
import { listRegistrations, type RegistrationRow, type RegistrationStatus, streamRegistrations } from '../db/queries/registrations.queries.ts';
import { DomainError } from './domain-error.ts';

export type RegistrationQuery = { courseId: string; status?: RegistrationStatus | undefined; after?: string | undefined };

async function assertCourseExists(sql: Sql, courseId: string): Promise<void> {
  if (!(await findCourse(sql, courseId))) throw new DomainError('course-not-found', `There is no course "${courseId}"`);
}

function filterOf(query: RegistrationQuery) {
  return { courseId: query.courseId, status: query.status ?? null, afterSeq: BigInt(query.after ?? '0') };
}

export async function pageRegistrations(sql: Sql, query: RegistrationQuery, limit: number): Promise<{ rows: RegistrationRow[]; next: string | null }> {
  await assertCourseExists(sql, query.courseId);
  const page = await listRegistrations(sql, filterOf(query), limit);
  return { rows: page.rows, next: page.lastSeq };
}

export async function exportRegistrations(sql: Sql, query: RegistrationQuery): Promise<AsyncGenerator<RegistrationRow>> {
  await assertCourseExists(sql, query.courseId);
  return streamRegistrations(sql, filterOf(query));
}
