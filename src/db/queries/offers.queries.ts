// SQL for waitlist offers: an answer to one (registrar_answer_offer) and the settling of the
// offers whose deadline has come (registrar_settle_offers), src/db/functions/offers.sql.
import type { Sql } from '../database.ts';
import { retryTransaction } from '../retry-policy.ts';
import type { RegistrationRow } from './registrations.queries.ts';

export type OfferAnswerOutcome =
  | { outcome: 'accepted' | 'declined' | 'already-accepted' | 'already-declined' | 'expired' | 'no-offer'; registration: RegistrationRow }
  | { outcome: 'not-found' };

/** Who answers an offer, as the history records it. */
export type OfferActor = 'student' | 'admin';

/** Accepts (`accept`) or declines the registration's open offer, in one transaction under the course lock. */
export async function answerOffer(sql: Sql, registrationId: string, accept: boolean, actor: OfferActor): Promise<OfferAnswerOutcome> {
  const [row] = await retryTransaction(() => sql<{ result: OfferAnswerOutcome }[]>`SELECT registrar_answer_offer(${registrationId}, ${accept}, ${actor}) AS result`);
  if (!row) throw new Error('registrar_answer_offer returned no row');
  return row.result;
}

/** Expires the course's offers whose deadline has come and offers their seats on, under the
 * course lock, in one transaction. Returns how many expired. */
export async function settleOffers(sql: Sql, courseId: string): Promise<number> {
  const [row] = await retryTransaction(() => sql.begin(async (tx) => {
    await tx`SELECT 1 FROM courses WHERE id = ${courseId} FOR NO KEY UPDATE`;
    return tx<{ expired: number }[]>`SELECT registrar_settle_offers(${courseId}) AS expired`;
  }));
  return row?.expired ?? 0;
}

/** The courses with an open offer whose deadline has come (an index range on the deadline). */
export async function findCoursesWithDueOffers(sql: Sql): Promise<string[]> {
  const rows = await sql<{ course_id: string }[]>`SELECT registrar_courses_with_due_offers() AS course_id`;
  return rows.map((r) => r.course_id);
}
