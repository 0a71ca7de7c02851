// SQL for courses. Seat counters change only here and in the registrar_* SQL functions.
import type { Sql, TransactionSql } from '../database.ts';

/** A course as stored: snake_case columns, counters kept by the registrar_* SQL functions. */
export type CourseRow = {
  id: string;
  title: string;
  capacity: number;
  waitlist_capacity: number;
  enrolled: number;
  waitlisted: number;
  opens_at: Date | null;
  closes_at: Date | null;
};

const COLUMNS = 'id, title, capacity, waitlist_capacity, enrolled, waitlisted, opens_at, closes_at';

export type NewCourse = {
  id: string;
  title: string;
  capacity: number;
  waitlistCapacity: number;
  opensAt: Date | null;
  closesAt: Date | null;
};

/** Returns undefined when a course with this id already exists. */
export async function insertCourse(sql: Sql, course: NewCourse): Promise<CourseRow | undefined> {
  const [row] = await sql<CourseRow[]>`
    INSERT INTO courses (id, title, capacity, waitlist_capacity, opens_at, closes_at)
    VALUES (${course.id}, ${course.title}, ${course.capacity}, ${course.waitlistCapacity}, ${course.opensAt}, ${course.closesAt})
    ON CONFLICT (id) DO NOTHING
    RETURNING ${sql.unsafe(COLUMNS)}`;
  return row;
}

export async function findCourse(sql: Sql | TransactionSql, id: string): Promise<CourseRow | undefined> {
  const [row] = await sql<CourseRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM courses WHERE id = ${id}`;
  return row;
}

export async function listCourses(sql: Sql): Promise<CourseRow[]> {
  return sql<CourseRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM courses ORDER BY id`;
}

/**
 * Takes the course lock that serializes every seat change of this course. FOR NO KEY UPDATE,
 * as the registrar_* functions take it (src/db/functions/): it does not block the FOR KEY SHARE of a
 * foreign-key check, so a reminder holding a registration can insert its event meanwhile.
 */
export async function lockCourse(tx: TransactionSql, id: string): Promise<CourseRow | undefined> {
  const [row] = await tx<CourseRow[]>`SELECT ${tx.unsafe(COLUMNS)} FROM courses WHERE id = ${id} FOR NO KEY UPDATE`;
  return row;
}

export type CourseSettings = Pick<NewCourse, 'title' | 'capacity' | 'waitlistCapacity' | 'opensAt' | 'closesAt'>;

export async function updateCourseSettings(tx: TransactionSql, id: string, settings: CourseSettings): Promise<void> {
  await tx`
    UPDATE courses SET title = ${settings.title}, capacity = ${settings.capacity},
      waitlist_capacity = ${settings.waitlistCapacity}, opens_at = ${settings.opensAt},
      closes_at = ${settings.closesAt}, updated_at = now()
    WHERE id = ${id}`;
}

/** Moves waitlisted students into free seats, in order, each with an event. Needs the course lock. */
export async function promoteWaitlisted(tx: TransactionSql, id: string): Promise<number> {
  const [row] = await tx<{ promoted: number }[]>`SELECT registrar_promote_waitlisted(${id}) AS promoted`;
  return row?.promoted ?? 0;
}
