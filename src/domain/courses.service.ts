// The rules for creating and changing courses. A capacity change takes the course lock, so it
// is serialized with every registration and cancel of that course; raising capacity promotes
// waitlisted students first come, first served, in the same transaction.
import { type CourseRow, findCourse, insertCourse, listCourses, lockCourse, promoteWaitlisted, updateCourseSettings } from '../db/queries/courses.queries.ts';
import type { Sql } from '../db/database.ts';
import { retryTransaction } from '../db/retry-policy.ts';
import { fullCoursesOf } from './full-courses.ts';
import { DomainError } from './domain-error.ts';

export type NewCourseInput = {
  id: string;
  title: string;
  capacity: number;
  waitlistCapacity?: number;
  opensAt?: string | null;
  closesAt?: string | null;
};

export type CoursePatch = Partial<Pick<NewCourseInput, 'title' | 'capacity' | 'waitlistCapacity' | 'opensAt' | 'closesAt'>>;

function toDate(value: string | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value);
}

function assertWindowInOrder(opensAt: Date | null, closesAt: Date | null): void {
  if (opensAt && closesAt && opensAt >= closesAt) {
    throw new DomainError('invalid-course-window', 'opensAt must be before closesAt');
  }
}

export async function createCourse(sql: Sql, input: NewCourseInput): Promise<CourseRow> {
  const opensAt = toDate(input.opensAt);
  const closesAt = toDate(input.closesAt);
  assertWindowInOrder(opensAt, closesAt);
  const row = await insertCourse(sql, {
    id: input.id,
    title: input.title,
    capacity: input.capacity,
    waitlistCapacity: input.waitlistCapacity ?? 0,
    opensAt,
    closesAt,
  });
  if (!row) throw new DomainError('course-exists', `A course with id "${input.id}" already exists`);
  return row;
}

export async function getCourse(sql: Sql, id: string): Promise<CourseRow> {
  const row = await findCourse(sql, id);
  if (!row) throw new DomainError('course-not-found', `There is no course "${id}"`);
  return row;
}

export async function getCourses(sql: Sql): Promise<CourseRow[]> {
  return listCourses(sql);
}

export async function changeCourse(sql: Sql, id: string, patch: CoursePatch): Promise<CourseRow> {
  // A deadlock with a reminder holding a registration that the raise promotes rolled the whole
  // transaction back (src/db/functions/cancel.sql): run it again.
  const changed = await retryTransaction(() => sql.begin(async (tx) => {
    const current = await lockCourse(tx, id);
    if (!current) throw new DomainError('course-not-found', `There is no course "${id}"`);
    const next = {
      title: patch.title ?? current.title,
      capacity: patch.capacity ?? current.capacity,
      waitlistCapacity: patch.waitlistCapacity ?? current.waitlist_capacity,
      opensAt: patch.opensAt === undefined ? current.opens_at : toDate(patch.opensAt),
      closesAt: patch.closesAt === undefined ? current.closes_at : toDate(patch.closesAt),
    };
    assertWindowInOrder(next.opensAt, next.closesAt);
    if (next.capacity < current.enrolled) {
      throw new DomainError('capacity-below-enrolled', `capacity ${next.capacity} is below the ${current.enrolled} students enrolled; nobody is evicted, so cancel registrations first`);
    }
    // Students promoted by a capacity raise leave the waitlist; the rest must still fit.
    const promotable = Math.min(current.waitlisted, next.capacity - current.enrolled);
    const staysWaitlisted = current.waitlisted - promotable;
    if (next.waitlistCapacity < staysWaitlisted) {
      throw new DomainError('capacity-below-enrolled', `waitlistCapacity ${next.waitlistCapacity} is below the ${staysWaitlisted} students who would stay waitlisted`);
    }
    // Promote before lowering the waitlist capacity, so the table's CHECK holds at every step.
    await updateCourseSettings(tx, id, { ...next, waitlistCapacity: Math.max(next.waitlistCapacity, current.waitlisted) });
    await promoteWaitlisted(tx, id);
    if (next.waitlistCapacity < current.waitlisted) {
      await updateCourseSettings(tx, id, next);
    }
    const row = await findCourse(tx, id);
    if (!row) throw new Error(`course ${id} vanished inside its own lock`);
    return row;
  }));
  // More seats or places (or a new window) may take registrations again: in this process at
  // once, in the others within FULL_COURSE_RECHECK_MS.
  fullCoursesOf(sql).forget(id);
  return changed;
}
