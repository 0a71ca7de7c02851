// Reading the history of registrations: a course's, paged newest first for the admin (the cursor
// is the id of the last entry seen), and one registration's, whole, for its manage token.
import type { Sql } from '../db/database.ts';
import { findCourse } from '../db/queries/courses.queries.ts';
import { type HistoryRow, listCourseHistory } from '../db/queries/history.queries.ts';
import { DomainError } from './domain-error.ts';

export async function pageCourseHistory(sql: Sql, query: { courseId: string; after?: string | undefined }, limit: number): Promise<{ rows: HistoryRow[]; next: string | null }> {
  if (!(await findCourse(sql, query.courseId))) throw new DomainError('course-not-found', `There is no course "${query.courseId}"`);
  const rows = await listCourseHistory(sql, { courseId: query.courseId, beforeId: query.after ?? null, limit: limit + 1 });
  const page = rows.slice(0, limit);
  return { rows: page, next: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
}
