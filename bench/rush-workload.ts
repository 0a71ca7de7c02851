// Owns the `rush` workload, generated from a seed: one hot course (far over capacity, unless its
// capacity says otherwise), the others with room for all, N students plus some duplicate requests
// (same email, other case), shuffled. With one course, every student wants the hot one. A share
// of the students may ask for three courses in one request (all or nothing): theirs and two others.
import type { CourseSpec } from './admin-api.ts';
import type { StudentRequest } from '../test/support/rush.ts';

export type RushWorkloadOptions = {
  students: number;
  courses: number;
  hotCapacity: number;
  hotWaitlist: number;
  /** Percent of the students who want the hot course. */
  hotSharePercent: number;
  /** Duplicate requests, as a percent of the students. */
  duplicatePercent: number;
  /** Percent of the students who ask for MULTI_COURSES courses in one request. */
  multiPercent?: number;
  seed: number;
};

/** Courses of a multi-course request in the rush. */
export const MULTI_COURSES = 3;

export type RushWorkload = {
  courses: CourseSpec[];
  /** In the order they are sent. */
  requests: StudentRequest[];
  hotCourse: string;
  /** Distinct students who want the hot course. */
  hotDemand: number;
  duplicates: number;
  /** Students whose request names MULTI_COURSES courses. */
  multiStudents: number;
  /** Courses the workload oversubscribes: they must end exactly full. */
  expectFull: string[];
};

export const HOT_COURSE = 'hot';

/** mulberry32: a small, fast, seedable PRNG; uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function buildRushWorkload(options: RushWorkloadOptions): RushWorkload {
  if (options.courses < 1) throw new Error('a rush needs at least 1 course: the hot one');
  if (options.courses === 1 && options.hotSharePercent < 100) throw new Error('with 1 course every student wants the hot course: hot share 100%');
  const random = seededRandom(options.seed);
  const others = Array.from({ length: options.courses - 1 }, (_, i) => `c${String(i + 2).padStart(3, '0')}`);
  const demand = new Map<string, number>([[HOT_COURSE, 0], ...others.map((id) => [id, 0] as const)]);
  const multiPercent = options.multiPercent ?? 0;
  if (multiPercent > 0 && others.length < MULTI_COURSES) throw new Error(`requests for ${MULTI_COURSES} courses need at least ${MULTI_COURSES + 1} courses`);
  const students: StudentRequest[] = [];
  let spread = 0;
  let multiStudents = 0;
  for (let i = 0; i < options.students; i++) {
    const course = random() * 100 < options.hotSharePercent ? HOT_COURSE : others[spread++ % others.length]!;
    const student = { name: `Student ${i + 1}`, email: `student${i + 1}@rush.example.org`, course };
    if (multiPercent > 0 && random() * 100 < multiPercent) {
      // Theirs and the next others in turn, never their own twice.
      const more = [];
      while (more.length < MULTI_COURSES - 1) {
        const other = others[spread++ % others.length]!;
        if (other !== course) more.push(other);
      }
      const courses = [course, ...more];
      for (const c of courses) demand.set(c, demand.get(c)! + 1);
      students.push({ ...student, courses });
      multiStudents += 1;
    } else {
      demand.set(course, demand.get(course)! + 1);
      students.push(student);
    }
  }

  const duplicateCount = Math.min(options.students, Math.round((options.students * options.duplicatePercent) / 100));
  const duplicates = shuffle([...students], random).slice(0, duplicateCount).map((s, i): StudentRequest => ({
    ...s,
    // The same student as the service sees it: emails are compared trimmed and case-insensitively.
    email: i % 2 === 0 ? s.email : `  ${s.email.toUpperCase()} `,
  }));

  const hotDemand = demand.get(HOT_COURSE)!;
  const courses: CourseSpec[] = [
    { id: HOT_COURSE, title: 'The hot course', capacity: options.hotCapacity, waitlistCapacity: options.hotWaitlist },
    ...others.map((id) => {
      const wanted = demand.get(id)!;
      return { id, title: `Course ${id}`, capacity: wanted + Math.max(5, Math.ceil(wanted / 10)), waitlistCapacity: 10 };
    }),
  ];
  return {
    courses,
    requests: shuffle([...students, ...duplicates], random),
    hotCourse: HOT_COURSE,
    hotDemand,
    duplicates: duplicateCount,
    multiStudents,
    expectFull: hotDemand >= options.hotCapacity + options.hotWaitlist ? [HOT_COURSE] : [],
  };
}
