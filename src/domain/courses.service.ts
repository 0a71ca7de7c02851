// The rules for creating and changing courses. A capacity change takes the course lock, so it
// is serialized with every registration and cancel of that course; raising capacity promotes
// waitlisted students first come, first served, in the same transaction. A course's queue is
// set with it (its state row and seed made with it); its order cannot change once its places
// are ordered, nor can it be removed while it has places. A course's term changes only while it
// has no active registration: the term counts of its students would have to move with them.
// With promotion 'offer', freed and raised seats are offered instead (src/db/functions/offers.sql).
import { type CourseRow, findCourse, findQueueUse, insertCourse, listCourses, hasWaitingSwaps, lockCourse, type Promotion, promoteWaitlisted, type QueueSettings, settleCourseOffers, updateCourseQueue, updateCourseSettings, updateCourseTerm } from '../db/queries/courses.queries.ts';
import { recordCourseEvent } from '../db/queries/history.queries.ts';
import { findTerm } from '../db/queries/terms.queries.ts';
import type { Sql, TransactionSql } from '../db/database.ts';
import { retryTransaction } from '../db/retry-policy.ts';
import { runWithSwapLocks } from '../db/swap-locks.ts';
import { generateQueueSeed } from '../security/tokens.ts';
import { describeCapacityChange } from './capacity-change.ts';
import { fullCoursesOf } from './full-courses.ts';
import { DomainError } from './domain-error.ts';

export type NewCourseInput = {
  id: string;
  title: string;
  capacity: number;
  waitlistCapacity?: number;
  opensAt?: string | null;
  closesAt?: string | null;
  queue?: QueueInput | null;
  /** The id of the course's term; null or absent: none. */
  term?: string | null;
  /** 'offer': a freed seat is held for waitlist position 1 for offerHours (default automatic). */
  promotion?: Promotion;
  offerHours?: number;
};

export type QueueInput = {
  order: 'random' | 'arrival';
  joinFrom?: string | null;
  admissionSeconds?: number;
  verifyEmail?: boolean;
};

export type CoursePatch = Partial<Pick<NewCourseInput, 'title' | 'capacity' | 'waitlistCapacity' | 'opensAt' | 'closesAt' | 'queue' | 'term' | 'promotion' | 'offerHours'>>;

const DEFAULT_ADMISSION_SECONDS = 300;
const DEFAULT_OFFER_HOURS = 48;

function toDate(value: string | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value);
}

function assertWindowInOrder(opensAt: Date | null, closesAt: Date | null): void {
  if (opensAt && closesAt && opensAt >= closesAt) {
    throw new DomainError('invalid-course-window', 'opensAt must be before closesAt');
  }
}

function toQueueSettings(input: QueueInput | null, closesAt: Date | null): QueueSettings | null {
  if (input === null) return null;
  const settings = {
    order: input.order,
    joinFrom: toDate(input.joinFrom),
    admissionSeconds: input.admissionSeconds ?? DEFAULT_ADMISSION_SECONDS,
    verifyEmail: input.verifyEmail ?? false,
  };
  if (settings.joinFrom && closesAt && settings.joinFrom >= closesAt) {
    throw new DomainError('invalid-queue', 'queue.joinFrom must be before closesAt');
  }
  return settings;
}

/** Terms are never deleted, so a term found here still exists when the course row is written
 * (the foreign key is the backstop). */
async function assertTermExists(sql: Sql | TransactionSql, termId: string | null): Promise<void> {
  if (termId !== null && !(await findTerm(sql, termId))) {
    throw new DomainError('unknown-term', `There is no term "${termId}": create it first (POST /terms)`);
  }
}

/** Sets or removes the queue inside the course lock. */
async function changeQueue(tx: TransactionSql, current: CourseRow, queue: QueueSettings | null): Promise<void> {
  const use = await findQueueUse(tx, current.id);
  if (queue === null && current.queue_order !== null && use.places) {
    throw new DomainError('queue-in-use', `The queue of "${current.id}" has places: it cannot be removed`);
  }
  if (queue !== null && use.ordered && current.queue_order !== queue.order) {
    throw new DomainError('queue-in-use', `The places of "${current.id}" are ordered already: the order cannot change`);
  }
  await updateCourseQueue(tx, current.id, queue, generateQueueSeed());
}

export async function createCourse(sql: Sql, input: NewCourseInput): Promise<CourseRow> {
  const opensAt = toDate(input.opensAt);
  const closesAt = toDate(input.closesAt);
  assertWindowInOrder(opensAt, closesAt);
  const queue = toQueueSettings(input.queue ?? null, closesAt);
  const termId = input.term ?? null;
  await assertTermExists(sql, termId);
  const course = {
    id: input.id,
    title: input.title,
    capacity: input.capacity,
    waitlistCapacity: input.waitlistCapacity ?? 0,
    opensAt,
    closesAt,
    termId,
    promotion: input.promotion ?? 'automatic',
    offerHours: input.offerHours ?? DEFAULT_OFFER_HOURS,
  };
  const row = queue === null ? await insertCourse(sql, course) : await sql.begin(async (tx) => {
    const inserted = await insertCourse(tx, course);
    if (!inserted) return undefined;
    await updateCourseQueue(tx, course.id, queue, generateQueueSeed());
    return findCourse(tx, course.id);
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
  // transaction back (src/db/functions/cancel.sql): run it again. A raise that completes a
  // waiting swap may need its old course locked first (src/db/swap-locks.ts).
  const changed = await runWithSwapLocks(sql, 'course-change', (also) => retryTransaction(() => sql.begin(async (tx) => {
    let current = await lockCourse(tx, id, also);
    if (!current) throw new DomainError('course-not-found', `There is no course "${id}"`);
    if (current.offered > 0 || also.length > 0) {
      // Offers past their deadline end before the change is judged (offers.sql).
      await settleCourseOffers(tx, id, also);
      current = (await lockCourse(tx, id))!;
    }
    if (patch.promotion === 'offer' && current.promotion !== 'offer' && await hasWaitingSwaps(tx, id)) {
      throw new DomainError('swaps-waiting', `Swaps wait on "${id}"'s waitlist, and a swap cannot wait on offers: its promotion stays "automatic" until they are done or cancelled`);
    }
    const next = {
      title: patch.title ?? current.title,
      capacity: patch.capacity ?? current.capacity,
      waitlistCapacity: patch.waitlistCapacity ?? current.waitlist_capacity,
      opensAt: patch.opensAt === undefined ? current.opens_at : toDate(patch.opensAt),
      closesAt: patch.closesAt === undefined ? current.closes_at : toDate(patch.closesAt),
      promotion: patch.promotion ?? current.promotion,
      offerHours: patch.offerHours ?? current.offer_hours,
    };
    assertWindowInOrder(next.opensAt, next.closesAt);
    if (patch.queue !== undefined) await changeQueue(tx, current, toQueueSettings(patch.queue, next.closesAt));
    if (patch.term !== undefined && patch.term !== current.term_id) {
      await assertTermExists(tx, patch.term);
      if (current.enrolled + current.waitlisted > 0) {
        throw new DomainError('term-in-use', `"${id}" has active registrations: its term cannot change while they count in it; cancel them first`);
      }
      await updateCourseTerm(tx, id, patch.term);
    }
    if (next.capacity < current.enrolled + current.offered) {
      const held = current.offered > 0 ? ` and the ${current.offered} seats held by open offers` : '';
      throw new DomainError('capacity-below-enrolled', `capacity ${next.capacity} is below the ${current.enrolled} students enrolled${held}; nobody is evicted, so cancel registrations first`);
    }
    // Students promoted by a capacity raise leave the waitlist; the rest must still fit (an
    // offer keeps its waitlist place until it is answered).
    const promotable = next.promotion === 'offer' ? 0 : Math.min(current.waitlisted - current.offered, next.capacity - current.enrolled - current.offered);
    const staysWaitlisted = current.waitlisted - promotable;
    if (next.waitlistCapacity < staysWaitlisted) {
      throw new DomainError('capacity-below-enrolled', `waitlistCapacity ${next.waitlistCapacity} is below the ${staysWaitlisted} students who would stay waitlisted`);
    }
    const capacityChange = describeCapacityChange(current, next);
    if (capacityChange) await recordCourseEvent(tx, { courseId: id, kind: 'capacity-changed', actor: 'admin', reason: capacityChange });
    // Promote before lowering the waitlist capacity, so the table's CHECK holds at every step.
    await updateCourseSettings(tx, id, { ...next, waitlistCapacity: Math.max(next.waitlistCapacity, current.waitlisted) });
    await promoteWaitlisted(tx, id, `promoted: capacity raised to ${next.capacity}`);
    if (next.waitlistCapacity < current.waitlisted) {
      await updateCourseSettings(tx, id, next);
    }
    const row = await findCourse(tx, id);
    if (!row) throw new Error(`course ${id} vanished inside its own lock`);
    return row;
  })));
  // More seats or places (or a new window, or no queue) may take registrations again: in this
  // process at once, in the others within FULL_COURSE_RECHECK_MS.
  fullCoursesOf(sql).forget(id);
  return changed;
}
