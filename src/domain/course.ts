// A course as the API speaks it, and how it is read from its stored row.
import type { CourseRow } from '../db/queries/courses.queries.ts';

export type Course = {
  id: string;
  title: string;
  capacity: number;
  waitlistCapacity: number;
  enrolled: number;
  waitlisted: number;
  seatsLeft: number;
  opensAt: string | null;
  closesAt: string | null;
};

export function toCourse(row: CourseRow): Course {
  return {
    id: row.id,
    title: row.title,
    capacity: row.capacity,
    waitlistCapacity: row.waitlist_capacity,
    enrolled: row.enrolled,
    waitlisted: row.waitlisted,
    seatsLeft: Math.max(row.capacity - row.enrolled, 0),
    opensAt: row.opens_at?.toISOString() ?? null,
    closesAt: row.closes_at?.toISOString() ?? null,
  };
}
