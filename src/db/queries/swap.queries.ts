// SQL for a swap: enrolled in another course and out of the old registration in one transaction,
// or nothing (registrar_swap, src/db/functions/swap.sql).
import type { Sql } from '../database.ts';
import { retryTransaction } from '../retry-policy.ts';
import { runWithSwapLocks } from '../swap-locks.ts';
import type { RegistrationRow } from './registrations.queries.ts';

/** Who swaps, as the history records it. */
export type SwapActor = 'student' | 'admin';

export type SwapOutcome =
  | { outcome: 'swapped'; registration: RegistrationRow; cancelled: RegistrationRow }
  | { outcome: 'waiting'; registration: RegistrationRow; replaces: RegistrationRow }
  | { outcome: 'swap-waiting'; course: string }
  | { outcome: 'not-active'; registration: RegistrationRow }
  | { outcome: 'existing'; registration: RegistrationRow }
  | { outcome: 'course-full'; queued: boolean }
  | { outcome: 'limit-reached'; term: string; limit: number }
  | { outcome: 'not-found' | 'same-course' | 'course-not-found' | 'no-seat' | 'registration-closed' | 'not-admitted' | 'wait-with-offers' | 'no-waitlist' };

/** The swap of a registration to `courseId`; `manageToken` is the new registration's (its hash is stored). */
export async function swap(sql: Sql, registrationId: string, courseId: string, manageToken: string, actor: SwapActor, wait: boolean): Promise<SwapOutcome> {
  // A deadlock or a unique-index conflict with a lock-last batch inserting the same student is
  // the retry policy's (src/db/retry-policy.ts): the swap runs again, deciding on what is now. A
  // waiting swap its cancel completes may need another course locked first (src/db/swap-locks.ts).
  const [row] = await runWithSwapLocks(sql, 'swap', (also) => retryTransaction(() => sql<{ result: SwapOutcome }[]>`
    SELECT registrar_swap(${registrationId}, ${courseId}, ${manageToken}, ${actor}, ${wait}, ${also}::text[]) AS result`));
  if (!row) throw new Error('registrar_swap returned no row');
  return row.result;
}
