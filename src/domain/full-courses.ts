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
import { perPool } from '../db/per-pool.ts';

export const FULL_COURSE_RECHECK_MS = 250;

export class FullCourses {
  private readonly fullUntil = new Map<string, number>();
  /** How long the database's "full" is trusted (tests lengthen it, to be independent of timing). */
  recheckMs = FULL_COURSE_RECHECK_MS;
  /** Registrations refused here, without a transaction (tests read it). */
  refusedFast = 0;

  isFull(courseId: string): boolean {
    const until = this.fullUntil.get(courseId);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.fullUntil.delete(courseId);
    return false;
  }

  markFull(courseId: string): void {
    this.fullUntil.set(courseId, performance.now() + this.recheckMs);
  }

  /** A seat or waitlist place may have been freed here: ask the database next time. */
  forget(courseId: string): void {
    this.fullUntil.delete(courseId);
  }
}

/** The full courses of a connection pool (a worker has one; tests make several). */
export const fullCoursesOf = perPool<object, FullCourses>(() => new FullCourses());
