// Owns the `rush` workload, generated from a seed: one hot course (far over capacity, unless its
// capacity says otherwise), the others with room for all, N students plus some duplicate requests
// (same email, other case), shuffled. With one course, every student wants the hot one.
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
  seed: number;
};

export type RushWorkload = {
  courses: CourseSpec[];
  /** In the order they are sent. */
  requests: StudentRequest[];
  hotCourse: string;
  /** Distinct students who want the hot course. */
  hotDemand: number;
  duplicates: number;
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
  const students: StudentRequest[] = [];
  let spread = 0;
  for (let i = 0; i < options.students; i++) {
    const course = random() * 100 < options.hotSharePercent ? HOT_COURSE : others[spread++ % others.length]!;
    demand.set(course, demand.get(course)! + 1);
    students.push({ name: `Student ${i + 1}`, email: `student${i + 1}@rush.example.org`, course });
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
    expectFull: hotDemand >= options.hotCapacity + options.hotWaitlist ? [HOT_COURSE] : [],
  };
}
