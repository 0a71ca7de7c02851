// A swap (SPEC "Terms: rules across courses", invariant 9): the student of an active
// registration is enrolled in another course and out of the old one in one transaction, or
// nothing changes. Decided in the database under both course locks (swap.sql); this module turns
// its outcomes into results or DomainErrors. With "wait": true and no free seat, the new
// registration waits on the course's waitlist and the swap completes when it is promoted.
import type { Sql } from '../db/database.ts';
import type { RegistrationRow } from '../db/queries/registrations.queries.ts';
import { swap } from '../db/queries/swap.queries.ts';
import { generateManageToken } from '../security/tokens.ts';
import { DomainError } from './domain-error.ts';
import { fullCoursesOf } from './full-courses.ts';
import { authorizeRegistration, type RegistrationCredential } from './registration.service.ts';

export type SwapInput = { course: string; wait: boolean };

/** Told of each transaction run again with a waiting swap's old course locked first (the metrics' counter). */
export { observeSwapLockRetries } from '../db/swap-locks.ts';

/** swapped: the new registration (enrolled) with its manage token, and the old one (cancelled);
 * waiting (`"wait": true`, no free seat): the new registration (waitlisted) and the old one, kept
 * until the new one is promoted. */
export type SwapResult =
  | { kind: 'swapped'; registration: RegistrationRow; manageToken: string; cancelled: RegistrationRow }
  | { kind: 'waiting'; registration: RegistrationRow; manageToken: string; replaces: RegistrationRow };

export async function swapRegistration(sql: Sql, id: string, credential: RegistrationCredential, input: SwapInput): Promise<SwapResult> {
  const registration = await authorizeRegistration(sql, id, credential);
  const { course } = input;
  if (course === registration.course_id) {
    throw new DomainError('same-course', `Registration "${id}" is in "${course}" already: a swap names another course`);
  }
  const manageToken = generateManageToken();
  const outcome = await swap(sql, id, course, manageToken, credential.kind === 'admin' ? 'admin' : 'student', input.wait);
  const unchanged = `nothing changed: the registration in "${registration.course_id}" stays`;
  switch (outcome.outcome) {
    case 'swapped':
      fullCoursesOf(sql).forget(registration.course_id);
      return { kind: 'swapped', registration: outcome.registration, manageToken, cancelled: outcome.cancelled };
    case 'waiting':
      return { kind: 'waiting', registration: outcome.registration, manageToken, replaces: outcome.replaces };
    case 'no-waitlist':
      throw new DomainError('swap-no-waitlist', `"${course}" has no waitlist to wait on ("wait": true needs one); ${unchanged}`);
    case 'wait-with-offers':
      throw new DomainError('swap-wait-with-offers', `"${course}" offers freed seats ("promotion": "offer"): a swap cannot wait on it; swap with "wait": false; ${unchanged}`);
    case 'swap-waiting':
      throw new DomainError('swap-already-waiting', `A swap of registration "${id}" waits on "${outcome.course}" already: one waiting swap per registration; ${unchanged}`);
    case 'not-found':
      throw new DomainError('registration-not-found', `There is no registration "${id}"`);
    case 'same-course':
      throw new DomainError('same-course', `Registration "${id}" is in "${course}" already: a swap names another course`);
    case 'course-not-found':
      throw new DomainError('course-not-found', `There is no course "${course}"`);
    case 'not-active':
      throw new DomainError('registration-not-active', `Registration "${id}" is cancelled: only an enrolled or waitlisted registration can be swapped`);
    case 'existing':
      throw new DomainError('already-registered', `This student holds a registration for "${course}" already; ${unchanged}`);
    case 'course-full':
      if (input.wait) throw new DomainError('course-full', `"${course}" has no free seat and no waitlist place left; ${unchanged}`);
      throw new DomainError('no-seat', `"${course}" has no free seat; ${unchanged}`);
    case 'no-seat':
      throw new DomainError('no-seat', `"${course}" has no free seat; ${unchanged}`);
    case 'registration-closed':
      throw new DomainError('registration-closed', `Registration for "${course}" is not open now; ${unchanged}`);
    case 'not-admitted':
      throw new DomainError('not-admitted', `"${course}" registers through its queue, with an admission a swap cannot carry: register for it through the queue; ${unchanged}`);
    case 'limit-reached':
      throw new DomainError('limit-reached', `Term "${outcome.term}" allows ${outcome.limit} active registrations (enrolled or waitlisted) per student: "${course}" is over it; ${unchanged}`);
    default:
      return outcome satisfies never;
  }
}
