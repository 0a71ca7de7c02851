// Courses this process knows to be full (seats and waitlist), so that the rush on a full course
// is refused without a transaction: no course lock, no commit, no WAL. Only a read remains, in
// batches, for the one case a full course still answers 200: a student who is registered already
// (SPEC invariant 5: a retry finds its registration).
//
// Bounded staleness: a course is trusted full for FULL_COURSE_RECHECK_MS after the database last
// said so; then the next registration for it goes to the database again. So a slot freed by a
// cancel or a capacity change in another worker or another instance is offered to everyone
// within that delay; in this process, at once (forget()).
import { perPool } from '../db/per-pool.ts';

export const FULL_COURSE_RECHECK_MS = 250;

export class FullCourses {
  private readonly fullUntil = new Map<string, number>();

  isFull(courseId: string): boolean {
    const until = this.fullUntil.get(courseId);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.fullUntil.delete(courseId);
    return false;
  }

  markFull(courseId: string): void {
    this.fullUntil.set(courseId, performance.now() + FULL_COURSE_RECHECK_MS);
  }

  /** A seat or waitlist place may have been freed here: ask the database next time. */
  forget(courseId: string): void {
    this.fullUntil.delete(courseId);
  }
}

/** The full courses of a connection pool (a worker has one; tests make several). */
export const fullCoursesOf = perPool<object, FullCourses>(() => new FullCourses());
