// The rules of registering and cancelling. The seat decisions themselves run inside the
// database (registrar_register_batch / registrar_cancel, src/db/functions/) under the course
// lock; this module prepares their inputs (normalized email, token hashes, idempotency
// fingerprint) and turns outcomes into results or DomainErrors.
import type { Sql } from '../db/database.ts';
import { type HistoryRow, listRegistrationHistory } from '../db/queries/history.queries.ts';
import { settleOffers } from '../db/queries/offers.queries.ts';
import { cancel, findActiveRegistration, findRegistration, register, type RegistrationRow, remindRegistration, tokenManagesRegistration } from '../db/queries/registrations.queries.ts';
import { generateManageToken, hashIdempotencyKey, hashRequest, hashToken, sealToken, unsealToken } from '../security/tokens.ts';
import { DomainError } from './domain-error.ts';
import { countFastRefusal, fullCoursesOf } from './full-courses.ts';
import { normalizeStudent } from './registration.ts';

export type RegisterInput = {
  name: string;
  email: string;
  course: string;
  idempotencyKey?: string | undefined;
  /** The admission token of a queue place, for a course with a queue. */
  admission?: string | undefined;
};

/**
 * A duplicate (this email holds an active registration for the course) is told only that, with
 * the course and address it sent: the caller may not be that student, so nothing stored is
 * shown. The student gets a reminder email with a fresh manage link instead.
 */
export type RegisterResult =
  | { kind: 'created'; registration: RegistrationRow; manageToken: string }
  | { kind: 'already-registered'; course: string; email: string };

/** Who is asking for a registration: the admin, or whoever holds a manage token. */
export type RegistrationCredential = { kind: 'admin' } | { kind: 'manage-token'; token: string };

function courseFull(courseId: string): DomainError {
  return new DomainError('course-full', `"${courseId}" has no seats and no waitlist places left`);
}

function notAdmitted(courseId: string): DomainError {
  return new DomainError('not-admitted', `"${courseId}" registers through its queue: send the admission of your admitted place (POST /courses/${courseId}/queue, then GET /queue/{id})`);
}

/** The refusal of a registration without an admission for a course known queued, from memory (counted). */
export function refuseWithoutAdmission(sql: Sql, courseId: string): DomainError {
  countFastRefusal(sql);
  return notAdmitted(courseId);
}

/** Told the size of each registration batch of this pool (the metrics' histogram). */
export { observeRegistrationBatches } from '../db/queries/registrations.queries.ts';

export async function registerStudent(sql: Sql, input: RegisterInput): Promise<RegisterResult> {
  const { name, email, emailKey: key } = normalizeStudent(input);
  const idempotencyKey = input.idempotencyKey;
  const keyHash = idempotencyKey === undefined ? null : hashIdempotencyKey(idempotencyKey);
  const alreadyRegistered = { kind: 'already-registered', course: input.course, email } as const;
  const fullCourses = fullCoursesOf(sql);
  const queued = fullCourses.isQueued(input.course);
  // A course known to have a queue, and no admission: refused from memory, no read at all.
  if (input.admission === undefined && queued) throw refuseWithoutAdmission(sql, input.course);
  // A course known full: no transaction, only a batched read. A key with a stored answer (or its
  // request in progress) goes the usual path, so the database replays that answer (or answers
  // 409 in progress). Otherwise, with a key or without: a student registered already is answered
  // 200 (and reminded, at most once per 10 minutes, decided in SQL), anyone else 409. Neither is
  // stored under the key: the 409 is an error answer, and the 200 names only what the request
  // sent, so a replay while the registration stands gets the same 200.
  // With an admission for a queued course the database decides: only it can tell the student's
  // own admission from a forged one before answering "registered already".
  if (fullCourses.isFull(input.course) && !queued) {
    const found = await findActiveRegistration(sql, input.course, key, keyHash);
    if (!found.keyKnown) {
      if (found.registration !== null) {
        await remindRegistration(sql, found.registration.id);
        return alreadyRegistered;
      }
      countFastRefusal(sql);
      throw courseFull(input.course);
    }
  }
  const manageToken = generateManageToken();
  const outcome = await register(sql, {
    courseId: input.course,
    name,
    email,
    emailKey: key,
    manageToken,
    idempotency: idempotencyKey === undefined || keyHash === null ? null : {
      keyHash,
      requestHash: hashRequest([input.course, name, key]),
      sealedToken: sealToken(manageToken, idempotencyKey),
    },
    admissionHash: input.admission === undefined ? null : hashToken(input.admission),
  });
  switch (outcome.outcome) {
    case 'created':
      return { kind: 'created', registration: outcome.registration, manageToken };
    case 'existing':
      await remindRegistration(sql, outcome.registration.id);
      return alreadyRegistered;
    case 'replay':
      // The original answer, as it was then: a 201 carries its token again, unsealed with the key;
      // a 200 is the same 200 again (its reminder went with the original).
      if (outcome.statusCode === 201 && outcome.sealedToken !== null && idempotencyKey !== undefined) {
        const token = unsealToken(Buffer.from(outcome.sealedToken, 'base64'), idempotencyKey);
        return { kind: 'created', registration: outcome.registration, manageToken: token };
      }
      return alreadyRegistered;
    case 'key-reused':
      throw new DomainError('idempotency-key-reused', 'This Idempotency-Key was already used for a different request; use a new key for a new request');
    case 'key-in-progress':
      throw new DomainError('idempotency-key-in-progress', 'A request with this Idempotency-Key is still being handled; retry shortly to get its answer');
    case 'course-not-found':
      throw new DomainError('course-not-found', `There is no course "${input.course}"`);
    case 'registration-closed':
      throw new DomainError('registration-closed', `Registration for "${input.course}" is not open now`);
    case 'course-full':
      fullCourses.markFull(input.course);
      if (outcome.queued) fullCourses.markQueued(input.course);
      throw courseFull(input.course);
    case 'not-admitted':
      fullCourses.markQueued(input.course);
      throw notAdmitted(input.course);
    case 'limit-reached':
      throw new DomainError('limit-reached', `Term "${outcome.term}" allows ${outcome.limit} active registrations (enrolled or waitlisted) per student, and this email holds ${outcome.limit} or more: cancel one to register for "${input.course}"`);
    default:
      return outcome satisfies never;
  }
}

export async function authorizeRegistration(sql: Sql, id: string, credential: RegistrationCredential): Promise<RegistrationRow> {
  const row = await findRegistration(sql, id);
  if (!row) throw new DomainError('registration-not-found', `There is no registration "${id}"`);
  if (credential.kind === 'manage-token' && !(await tokenManagesRegistration(sql, id, hashToken(credential.token)))) {
    throw new DomainError('unauthorized', 'This token does not manage this registration');
  }
  return row;
}

export async function getRegistration(sql: Sql, id: string, credential: RegistrationCredential): Promise<RegistrationRow> {
  const row = await authorizeRegistration(sql, id, credential);
  if (row.offer_until === null || new Date(row.offer_until) > new Date()) return row;
  // An offer past its deadline is decided at this look (offers.sql), then the row read again.
  await settleOffers(sql, row.course_id);
  return (await findRegistration(sql, id)) ?? row;
}

/** Cancelling twice is fine: the second call reports the cancelled registration again. */
export async function cancelRegistration(sql: Sql, id: string, credential: RegistrationCredential): Promise<RegistrationRow> {
  const registration = await authorizeRegistration(sql, id, credential);
  const outcome = await cancel(sql, id, credential.kind === 'admin' ? 'admin' : 'student');
  fullCoursesOf(sql).forget(registration.course_id);
  switch (outcome.outcome) {
    case 'cancelled':
    case 'already-cancelled':
      return outcome.registration;
    case 'not-found':
      throw new DomainError('registration-not-found', `There is no registration "${id}"`);
    default:
      return outcome satisfies never;
  }
}

/** The registration's history, newest first: each change with who made it and why. */
export async function getRegistrationHistory(sql: Sql, id: string, credential: RegistrationCredential): Promise<HistoryRow[]> {
  await authorizeRegistration(sql, id, credential);
  return listRegistrationHistory(sql, id);
}
