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
  /** NULL: no queue. */
  queue_order: QueueOrder | null;
  queue_join_from: Date | null;
  queue_admission_seconds: number;
  queue_verify_email: boolean;
  /** The SHA-256 of the random order's seed, from the moment the queue exists. */
  queue_seed_sha256: Buffer | null;
  /** The seed itself, once the places are ordered. */
  queue_seed: Buffer | null;
  /** NULL: the course belongs to no term. */
  term_id: string | null;
  /** 'offer': a freed seat is held for waitlist position 1 for offer_hours (offers.sql). */
  promotion: Promotion;
  offer_hours: number;
  /** Seats held by open offers: enrolled + offered <= capacity. */
  offered: number;
};

export type Promotion = 'automatic' | 'offer';

export type QueueOrder = 'random' | 'arrival';

export type QueueSettings = {
  order: QueueOrder;
  joinFrom: Date | null;
  admissionSeconds: number;
  verifyEmail: boolean;
};

// The queue state's columns are read by subqueries, so a row lock (lockCourse) stays on courses.
const COLUMNS = `id, title, capacity, waitlist_capacity, enrolled, waitlisted, opens_at, closes_at,
  queue_order, queue_join_from, queue_admission_seconds, queue_verify_email, term_id, promotion, offer_hours, offered,
  (SELECT sha256(s.seed) FROM queue_states s WHERE s.course_id = courses.id) AS queue_seed_sha256,
  (SELECT s.seed FROM queue_states s WHERE s.course_id = courses.id AND s.ordered_at IS NOT NULL) AS queue_seed`;

export type NewCourse = {
  id: string;
  title: string;
  capacity: number;
  waitlistCapacity: number;
  opensAt: Date | null;
  closesAt: Date | null;
  termId: string | null;
  promotion: Promotion;
  offerHours: number;
};

/** Returns undefined when a course with this id already exists. */
export async function insertCourse(sql: Sql | TransactionSql, course: NewCourse): Promise<CourseRow | undefined> {
  const [row] = await sql<CourseRow[]>`
    INSERT INTO courses (id, title, capacity, waitlist_capacity, opens_at, closes_at, term_id, promotion, offer_hours)
    VALUES (${course.id}, ${course.title}, ${course.capacity}, ${course.waitlistCapacity}, ${course.opensAt}, ${course.closesAt}, ${course.termId},
      ${course.promotion}, ${course.offerHours})
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
/** Locks the course (with `also`'s courses, "course\nemail key" pairs of waiting swaps to lock
 * first, in id order: src/db/swap-locks.ts) and reads it. */
export async function lockCourse(tx: TransactionSql, id: string, also: readonly string[] = []): Promise<CourseRow | undefined> {
  if (also.length > 0) await tx`SELECT 1 FROM courses WHERE id = ANY (${[id, ...also.map((pair) => pair.split('\n')[0]!)]}::text[]) ORDER BY id FOR NO KEY UPDATE`;
  const [row] = await tx<CourseRow[]>`SELECT ${tx.unsafe(COLUMNS)} FROM courses WHERE id = ${id} FOR NO KEY UPDATE`;
  return row;
}

/** Whether registrations wait on the course to swap into it (swap.sql). */
export async function hasWaitingSwaps(tx: TransactionSql, id: string): Promise<boolean> {
  // A waiting registration whose old one is cancelled is an ordinary waitlist place (swap.sql),
  // and cancelled is final: one read active may be cancelled meanwhile, never the other way.
  const rows = await tx`
    SELECT 1 FROM registrations n JOIN registrations o ON o.id = n.swap_from
    WHERE n.course_id = ${id} AND n.status = 'waitlisted' AND o.status <> 'cancelled' LIMIT 1`;
  return rows.length > 0;
}

export type CourseSettings = Pick<NewCourse, 'title' | 'capacity' | 'waitlistCapacity' | 'opensAt' | 'closesAt' | 'promotion' | 'offerHours'>;

export async function updateCourseSettings(tx: TransactionSql, id: string, settings: CourseSettings): Promise<void> {
  await tx`
    UPDATE courses SET title = ${settings.title}, capacity = ${settings.capacity},
      waitlist_capacity = ${settings.waitlistCapacity}, opens_at = ${settings.opensAt},
      closes_at = ${settings.closesAt}, promotion = ${settings.promotion}, offer_hours = ${settings.offerHours}, updated_at = now()
    WHERE id = ${id}`;
}

/** Expires the course's offers past their deadline and offers their seats on (offers.sql), with
 * `also`'s term counts locked first, in key order. Needs the course locks. */
export async function settleCourseOffers(tx: TransactionSql, id: string, also: readonly string[] = []): Promise<void> {
  if (also.length === 0) {
    await tx`SELECT registrar_settle_offers(${id})`;
    return;
  }
  await tx`SELECT registrar_lock_counts_and_settle(${id} || registrar_also_courses(${also}::text[]),
    registrar_also_courses(${also}::text[]), registrar_also_keys(${also}::text[]), clock_timestamp())`;
}

/** Moves the course into a term (null: none). Needs the course lock, and no active registration
 * (their term counts would have to move with them). */
export async function updateCourseTerm(tx: TransactionSql, id: string, termId: string | null): Promise<void> {
  await tx`UPDATE courses SET term_id = ${termId}, updated_at = now() WHERE id = ${id}`;
}

/** Moves waitlisted students into free seats, in order, each with an event saying `reason`. Needs the course lock. */
export async function promoteWaitlisted(tx: TransactionSql, id: string, reason: string): Promise<number> {
  const [row] = await tx<{ promoted: number }[]>`SELECT registrar_promote_waitlisted(${id}, ${reason}) AS promoted`;
  return row?.promoted ?? 0;
}

/**
 * Sets the course's queue (null: none). A new queue gets its state row with `seed`; removing one
 * removes the state row, so the caller checks first that no place depends on it.
 */
export async function updateCourseQueue(tx: TransactionSql, id: string, queue: QueueSettings | null, seed: Buffer): Promise<void> {
  await tx`
    UPDATE courses SET queue_order = ${queue?.order ?? null}, queue_join_from = ${queue?.joinFrom ?? null},
      queue_admission_seconds = ${queue?.admissionSeconds ?? 300}, queue_verify_email = ${queue?.verifyEmail ?? false}, updated_at = now()
    WHERE id = ${id}`;
  if (queue === null) {
    await tx`DELETE FROM queue_states WHERE course_id = ${id}`;
  } else {
    await tx`INSERT INTO queue_states (course_id, seed) VALUES (${id}, ${seed}) ON CONFLICT (course_id) DO NOTHING`;
  }
}

/** What a change of the queue must respect: whether its places are ordered, and whether it has any. */
export async function findQueueUse(tx: TransactionSql, id: string): Promise<{ ordered: boolean; places: boolean }> {
  const [row] = await tx<{ ordered: boolean; places: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM queue_states WHERE course_id = ${id} AND ordered_at IS NOT NULL) AS ordered,
           EXISTS (SELECT 1 FROM queue_places WHERE course_id = ${id}) AS places`;
  return row ?? { ordered: false, places: false };
}
