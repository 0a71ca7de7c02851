// Courses this process knows to be full (seats and waitlist), so that the rush on a full course
// is refused without a transaction: no course lock, no commit, no WAL. Only a read remains, in
// batches, for the cases a full course does not refuse: a student who is registered already
// (SPEC invariant 5: a retry finds its registration) and an Idempotency-Key with a stored answer
// (src/domain/registration.service.ts).
//
// Bounded staleness: a course is trusted full for FULL_COURSE_RECHECK_MS after the database last
// said so; then the next registration for it goes to the database again. So a slot freed by a
// cancel or a capacity change in another worker or another instance is offered to everyone
// within that delay; in this process, at once (forget()).
//
// The same memory holds the courses known to have a queue (the database refused a registration
// for want of an admission): a registration without an admission for one of them is refused
// here, with no read at all (a student registered already sent their admission the first time,
// and a retry sends it again). Trusted for the same delay, so a queue removed is seen by
// every process within it. Under overload a longer memory (QUEUED_COURSE_MEMORY_MS) decides what
// load shedding does with a registration for the course (src/http/load-shedding.ts).

export const FULL_COURSE_RECHECK_MS = 250;

/** How long a course the database last said was queued is taken as queued by load shedding. */
export const QUEUED_COURSE_MEMORY_MS = 60_000;

export type FullCoursesOptions = {
  /** How long the database's "full" is trusted; FULL_COURSE_RECHECK_MS unless set. */
  recheckMs?: number;
};

export class FullCourses {
  private readonly fullUntil = new Map<string, number>();
  private readonly queuedUntil = new Map<string, number>();
  private readonly queuedRecentlyUntil = new Map<string, number>();
  private readonly recheckMs: number;

  constructor(options: FullCoursesOptions = {}) {
    this.recheckMs = options.recheckMs ?? FULL_COURSE_RECHECK_MS;
  }

  isFull(courseId: string): boolean {
    return this.holds(this.fullUntil, courseId);
  }

  markFull(courseId: string): void {
    this.fullUntil.set(courseId, performance.now() + this.recheckMs);
  }

  /** The course has a queue: a registration without an admission is refused. */
  isQueued(courseId: string): boolean {
    return this.holds(this.queuedUntil, courseId);
  }

  /** The database said the course was queued within QUEUED_COURSE_MEMORY_MS (isQueued or not). */
  wasQueuedRecently(courseId: string): boolean {
    return this.holds(this.queuedRecentlyUntil, courseId);
  }

  markQueued(courseId: string): void {
    const now = performance.now();
    this.queuedUntil.set(courseId, now + this.recheckMs);
    this.queuedRecentlyUntil.set(courseId, now + QUEUED_COURSE_MEMORY_MS);
  }

  /** A seat or waitlist place may have been freed here, or the queue changed: ask the database next time. */
  forget(courseId: string): void {
    this.fullUntil.delete(courseId);
    this.queuedUntil.delete(courseId);
    this.queuedRecentlyUntil.delete(courseId);
  }

  private holds(untilByCourse: Map<string, number>, courseId: string): boolean {
    const until = untilByCourse.get(courseId);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    untilByCourse.delete(courseId);
    return false;
  }
}

// Per connection pool (a worker has one; tests make several): its full courses, made on first
// use, the options they are made with, and who is told of each refusal made from memory.
const fullCoursesByPool = new WeakMap<object, FullCourses>();
const optionsByPool = new WeakMap<object, FullCoursesOptions>();
const refusalObservers = new WeakMap<object, () => void>();

/** The full courses of a connection pool. */
export function fullCoursesOf(pool: object): FullCourses {
  let fullCourses = fullCoursesByPool.get(pool);
  if (fullCourses === undefined) {
    fullCourses = new FullCourses(optionsByPool.get(pool));
    fullCoursesByPool.set(pool, fullCourses);
  }
  return fullCourses;
}

/** Sets the options of a pool's full courses; before their first use, or they would not apply. */
export function configureFullCourses(pool: object, options: FullCoursesOptions): void {
  if (fullCoursesByPool.has(pool)) throw new Error('configureFullCourses: this pool\'s full courses are in use already');
  optionsByPool.set(pool, options);
}

/** Told of each registration this pool refuses from memory (the metrics' registrar_fast_refusals_total). */
export function observeFastRefusals(pool: object, observer: () => void): void {
  refusalObservers.set(pool, observer);
}

/** A registration was refused from memory, without a transaction. */
export function countFastRefusal(pool: object): void {
  refusalObservers.get(pool)?.();
}
