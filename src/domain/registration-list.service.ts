// Reading a course's registrations for the admin: paged in arrival order, or all of them as a
// stream for the CSV export. The cursor is the arrival sequence of the last row seen.
import type { Sql } from '../db/database.ts';
import { findCourse } from '../db/queries/courses.queries.ts';
import { listRegistrations, type RegistrationStatus, streamRegistrations } from '../db/queries/registrations.queries.ts';
import { DomainError } from './domain-error.ts';
import { type Registration, toRegistration } from './registration.ts';

export type RegistrationQuery = { courseId: string; status?: RegistrationStatus | undefined; after?: string | undefined };

async function assertCourseExists(sql: Sql, courseId: string): Promise<void> {
  if (!(await findCourse(sql, courseId))) throw new DomainError('course-not-found', `There is no course "${courseId}"`);
}

function filterOf(query: RegistrationQuery) {
  return { courseId: query.courseId, status: query.status ?? null, afterSeq: BigInt(query.after ?? '0') };
}

export async function pageRegistrations(sql: Sql, query: RegistrationQuery, limit: number): Promise<{ items: Registration[]; next: string | null }> {
  await assertCourseExists(sql, query.courseId);
  const page = await listRegistrations(sql, filterOf(query), limit);
  return { items: page.rows.map(toRegistration), next: page.lastSeq };
}

export async function exportRegistrations(sql: Sql, query: RegistrationQuery): Promise<AsyncGenerator<Registration>> {
  await assertCourseExists(sql, query.courseId);
  return (async function* mapRows() {
    for await (const row of streamRegistrations(sql, filterOf(query))) yield toRegistration(row);
  })();
}
