// Waitlist offers: the student's answer to an offer, and the settling of offers whose deadline
// has come. The deadline is decided in the database under the course lock (offers.sql); this
// module turns outcomes into results or DomainErrors.
import type { Sql } from '../db/database.ts';
import { answerOffer, findCoursesWithDueOffers, settleOffers } from '../db/queries/offers.queries.ts';
import type { RegistrationRow } from '../db/queries/registrations.queries.ts';
import { DomainError } from './domain-error.ts';
import { fullCoursesOf } from './full-courses.ts';
import { authorizeRegistration, type RegistrationCredential } from './registration.service.ts';

export type OfferAnswer = 'accept' | 'decline';

/**
 * Accepting twice, or declining twice, answers the registration as it is; accepting after a
 * decline, declining after an accept, or answering without an offer is a 409 no-offer; either
 * after the deadline is a 409 offer-expired.
 */
export async function answerRegistrationOffer(sql: Sql, id: string, credential: RegistrationCredential, answer: OfferAnswer): Promise<RegistrationRow> {
  const registration = await authorizeRegistration(sql, id, credential);
  const outcome = await answerOffer(sql, id, answer === 'accept', credential.kind === 'admin' ? 'admin' : 'student');
  if (answer === 'decline') fullCoursesOf(sql).forget(registration.course_id);
  switch (outcome.outcome) {
    case 'accepted':
    case 'declined':
      return outcome.registration;
    case 'already-accepted':
      if (answer === 'accept') return outcome.registration;
      throw new DomainError('no-offer', 'The offer was accepted: the seat is yours; to give it up, cancel the registration');
    case 'already-declined':
      if (answer === 'decline') return outcome.registration;
      throw new DomainError('no-offer', 'The offer was declined: the seat went to the next student on the waitlist');
    case 'expired':
      throw new DomainError('offer-expired', 'The offer\'s deadline has passed: the seat went to the next student on the waitlist');
    case 'no-offer':
      throw new DomainError('no-offer', `Registration "${id}" holds no open offer (status ${outcome.registration.status})`);
    case 'not-found':
      throw new DomainError('registration-not-found', `There is no registration "${id}"`);
    default:
      return outcome satisfies never;
  }
}

/** The job worker's tick: every course with an offer past its deadline is settled, each once
 * (the course lock and the offer's own row make a second settle find nothing). */
export async function settleDueOffers(sql: Sql): Promise<number> {
  let expired = 0;
  for (const courseId of await findCoursesWithDueOffers(sql)) expired += await settleOffers(sql, courseId);
  return expired;
}
