// A registration for several courses in one request, all or nothing (SPEC "Terms: rules across
// courses"): every course enrolled or waitlisted as asked, or none. The decision runs in one
// statement (registrar_register_courses); this module prepares it and names the course that refused.
import type { Sql } from '../db/database.ts';
import { type CourseOutcome, registerCourses } from '../db/queries/register-courses.queries.ts';
import { findActiveRegistration, type RegistrationRow, remindRegistration } from '../db/queries/registrations.queries.ts';
import { generateManageToken, hashIdempotencyKey, hashRequest, sealToken, unsealToken } from '../security/tokens.ts';
import { DomainError } from './domain-error.ts';
import { countFastRefusal, fullCoursesOf } from './full-courses.ts';
import { normalizeStudent } from './registration.ts';

/** Most courses in one request. */
export const MAX_COURSES_PER_REQUEST = 10;

export type RegisterCoursesInput = {
  name: string;
  email: string;
  /** Distinct course ids, 1..MAX_COURSES_PER_REQUEST, checked by the caller. */
  courses: readonly string[];
  /** false: seats only, a course without a free seat refuses the request. */
  waitlist: boolean;
  idempotencyKey?: string | undefined;
};

/**
 * created: every course, in the request's order, each with its manage token. already-registered:
 * this email holds an active registration in every course of the request (a retry of a request
 * that succeeded): told only that, as for one course, and each registration's student is reminded.
 */
export type RegisterCoursesResult =
  | { kind: 'created'; registrations: { registration: RegistrationRow; manageToken: string }[] }
  | { kind: 'already-registered'; courses: readonly string[]; email: string };

/** A refusal of the whole request, naming the course that refused it. */
export class CourseRefusal extends DomainError {
  readonly course: string;

  constructor(code: DomainError['code'], course: string, message: string) {
    super(code, message);
    this.course = course;
  }
}

function refuseFull(course: string): CourseRefusal {
  return new CourseRefusal('course-full', course, `"${course}" has no seats and no waitlist places left: none of the request's courses was registered`);
}

/**
 * The key of each course's idempotency row: the request's key itself for the first course (so a
 * single-course request with the same key is told the key is reused), derived for the others.
 */
function keyHashesOf(key: string, courses: readonly string[]): Buffer[] {
  return courses.map((course, i) => hashIdempotencyKey(i === 0 ? key : `${key}\0course\0${course}`));
}

export async function registerStudentForCourses(sql: Sql, input: RegisterCoursesInput): Promise<RegisterCoursesResult> {
  const { name, email, emailKey: key } = normalizeStudent(input);
  const { courses, idempotencyKey } = input;
  const keyHashes = idempotencyKey === undefined ? null : keyHashesOf(idempotencyKey, courses);
  const fullCourses = fullCoursesOf(sql);
  // From memory: a course with a queue needs its own admission, which this request cannot carry.
  const queued = courses.find((course) => fullCourses.isQueued(course));
  if (queued !== undefined) {
    countFastRefusal(sql);
    throw notAdmitted(queued);
  }
  // A course known full refuses the whole request without a transaction, unless this student is
  // registered in it already or the key has a stored answer: then the database decides.
  for (const course of courses.filter((c) => fullCourses.isFull(c))) {
    const found = await findActiveRegistration(sql, course, key, keyHashes?.[0] ?? null);
    if (found.keyKnown || found.registration !== null) break;
    countFastRefusal(sql);
    throw refuseFull(course);
  }
  const manageTokens = courses.map(() => generateManageToken());
  const outcome = await registerCourses(sql, {
    courseIds: courses, name, email, emailKey: key, manageTokens, seatsOnly: !input.waitlist,
    idempotency: idempotencyKey === undefined || keyHashes === null ? null : {
      keyHashes,
      requestHash: hashRequest(['courses', ...courses, name, key, input.waitlist ? 'waitlist' : 'seats']),
      sealedTokens: manageTokens.map((token) => sealToken(token, idempotencyKey)),
    },
  });
  const { results } = outcome;
  if (outcome.committed) {
    return { kind: 'created', registrations: results.map((r, i) => ({ registration: registrationOf(r), manageToken: manageTokens[i]! })) };
  }
  if (results.every((r) => r.outcome === 'replay')) return replayed(results, courses, email, idempotencyKey);
  if (results.every((r) => r.outcome === 'existing')) {
    await Promise.all(results.map((r) => remindRegistration(sql, registrationOf(r).id)));
    return { kind: 'already-registered', courses, email };
  }
  throw refusalOf(sql, courses, results);
}

/** The registration a course's outcome created or found. */
function registrationOf(outcome: CourseOutcome): RegistrationRow {
  if (outcome.outcome !== 'created' && outcome.outcome !== 'existing') throw new Error(`a course answered ${outcome.outcome} where a registration was expected`);
  return outcome.registration;
}

/** The original answer of a request with this key, as it was then: 201s with their tokens, or the 200. */
function replayed(results: CourseOutcome[], courses: readonly string[], email: string, idempotencyKey: string | undefined): RegisterCoursesResult {
  const registrations = [];
  for (const result of results) {
    if (result.outcome !== 'replay' || result.statusCode !== 201 || result.sealedToken === null || idempotencyKey === undefined) {
      return { kind: 'already-registered', courses, email };
    }
    registrations.push({ registration: result.registration, manageToken: unsealToken(Buffer.from(result.sealedToken, 'base64'), idempotencyKey) });
  }
  return { kind: 'created', registrations };
}

function notAdmitted(course: string): CourseRefusal {
  return new CourseRefusal('not-admitted', course, `"${course}" registers through its queue, one course at a time with its admission: register for it alone (POST /register with "course" and "admission"); none of the request's courses was registered`);
}

/**
 * The refusal the request is answered with: a key in use or reused first (it concerns the whole
 * request), then the first course, in the request's order, that refused; a course this student
 * holds already, among courses that would have been created, refuses as registered already.
 */
function refusalOf(sql: Sql, courses: readonly string[], results: CourseOutcome[]): DomainError {
  const outcomes = results.map((r) => r.outcome);
  if (outcomes.includes('key-in-progress')) {
    return new DomainError('idempotency-key-in-progress', 'A request with this Idempotency-Key is still being handled; retry shortly to get its answer');
  }
  if (outcomes.includes('key-reused') || outcomes.includes('replay')) {
    return new DomainError('idempotency-key-reused', 'This Idempotency-Key was already used for a different request; use a new key for a new request');
  }
  const none = 'none of the request\'s courses was registered';
  const index = results.findIndex((r) => r.outcome !== 'created' && r.outcome !== 'existing');
  if (index === -1) {
    const course = courses[outcomes.indexOf('existing')]!;
    return new CourseRefusal('already-registered', course, `This email holds a registration for "${course}" already: send the request without it; ${none}`);
  }
  const course = courses[index]!;
  const refused = results[index]!;
  switch (refused.outcome) {
    case 'course-not-found':
      return new CourseRefusal('course-not-found', course, `There is no course "${course}"; ${none}`);
    case 'registration-closed':
      return new CourseRefusal('registration-closed', course, `Registration for "${course}" is not open now; ${none}`);
    case 'course-full':
      fullCoursesOf(sql).markFull(course);
      if (refused.queued) fullCoursesOf(sql).markQueued(course);
      return refuseFull(course);
    case 'no-seat':
      return new CourseRefusal('no-seat', course, `"${course}" has no free seat, and the request asked for seats only ("waitlist": false); ${none}`);
    case 'not-admitted':
      fullCoursesOf(sql).markQueued(course);
      return notAdmitted(course);
    case 'limit-reached':
      return new CourseRefusal('limit-reached', course, `Term "${refused.term}" allows ${refused.limit} active registrations (enrolled or waitlisted) per student, counting this request's courses together: "${course}" is over it; ${none}`);
    default:
      throw new Error(`a refused request has a course answered ${refused.outcome}`);
  }
}
