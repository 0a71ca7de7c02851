// What follows a failed database attempt, decided in one table: run it again locked first, run it
// again as it was, split a batch into its members, or give the error as the answer. Every
// statement that PostgreSQL may roll back for a retryable reason runs through here.
import { errorCode, OUT_OF_RESOURCES_CODES } from './postgres-errors.ts';

/**
 * The next step after an attempt failed. `lock-first`: run again with the courses locked before
 * they are read (a statement without that mode runs again as it was); `again`: run again as it
 * was; `split`: each member of the batch alone, so one bad member fails only itself; `answer`:
 * the error is the caller's answer.
 */
export type NextStep = 'lock-first' | 'again' | 'split' | 'answer';

type Rule = { step: Extract<NextStep, 'lock-first' | 'again'>; reason: string };

/**
 * Errors after which an attempt runs again, with the reason. Each means PostgreSQL rolled the
 * whole attempt back (nothing of it committed, so running it again cannot apply it twice) for a
 * cause that another attempt can get past. https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const RULES: Readonly<Record<string, Rule>> = {
  RGB01: {
    step: 'lock-first',
    reason: 'a lock-last registration batch found a course, or a student\'s count in a term, changed under its decisions (src/db/functions/register-batch.sql); locked first, nothing can change under them',
  },
  '23505': {
    step: 'lock-first',
    reason: 'unique_violation: a lock-last batch inserted a student that another transaction registered meanwhile; locked first, the batch reads the registrations after the course lock and answers that student "existing"',
  },
  '40P01': {
    step: 'lock-first',
    reason: 'deadlock_detected: a lock-last batch\'s new row waited for a course held by a locked-first batch inserting the same student, or a cancel and a reminder locked the same rows in the other order; locked first, the attempt waits its turn behind the course lock',
  },
  '40001': {
    step: 'again',
    reason: 'serialization_failure: a transaction conflicted with a concurrent one; as it was, it runs on what that one committed',
  },
};

/**
 * Errors that say the database, not a member, refused: it is short of disk, memory or another
 * resource, or it takes no connection now. A batch meeting one is answered with it whole:
 * splitting would send one statement per member to a database that cannot take one, and each
 * member's caller answers 503 with Retry-After anyway.
 */
const DATABASE_REFUSALS: ReadonlySet<string> = new Set([
  ...OUT_OF_RESOURCES_CODES,
  '57P03', // cannot_connect_now: starting up or in recovery
  '53300', // too_many_connections
  'ECONNREFUSED', // nothing listens: the database is down
  'CONNECT_TIMEOUT', // postgres.js: no connection within connect_timeout
]);

/** Attempts of one statement (or one batch) while it keeps meeting the errors of RULES. */
export const MAX_ATTEMPTS = 3;

/**
 * The step after `attempt` (1 for the first) failed with `error`, for a batch of `members`. An
 * error of RULES is retried until MAX_ATTEMPTS; after that, or for any other error, a batch is
 * split (the error may be one member's, or its connection's: each member alone, on a connection
 * of its own, learns its own outcome) and a single member gets the error as its answer. A
 * refusal by the whole database (DATABASE_REFUSALS) is every member's answer at once.
 */
export function nextStep(error: unknown, attempt: number, members: number): NextStep {
  const code = errorCode(error);
  if (code !== undefined && DATABASE_REFUSALS.has(code)) return 'answer';
  const rule = code === undefined ? undefined : RULES[code];
  if (rule !== undefined && attempt < MAX_ATTEMPTS) return rule.step;
  return members > 1 ? 'split' : 'answer';
}

/** A failed attempt and the step taken after it, as told to `onStep`. */
export type FailedAttempt = { code: string | undefined; attempt: number; members: number; lockFirst: boolean; step: NextStep };

export type RetryOptions = {
  /** The first attempt is locked first (a batch with Idempotency-Keys); else lock last. */
  lockFirst?: boolean;
  onStep?: (failed: FailedAttempt) => void;
};

/**
 * Runs a batch under the policy: one attempt, in the common case, answers every member;
 * `attempt` gets the members and whether to lock first. One settled result per member, in order:
 * after a split a member may fail alone.
 */
export async function runBatch<I, O>(
  items: readonly I[],
  attempt: (items: readonly I[], lockFirst: boolean) => Promise<O[]>,
  options: RetryOptions = {},
): Promise<PromiseSettledResult<O>[]> {
  let lockFirst = options.lockFirst ?? false;
  for (let attempts = 1; ; attempts += 1) {
    try {
      const results = await attempt(items, lockFirst);
      if (results.length !== items.length) throw new Error(`a batch of ${items.length} answered ${results.length} results`);
      return results.map((value) => ({ status: 'fulfilled', value }));
    } catch (error) {
      const step = nextStep(error, attempts, items.length);
      options.onStep?.({ code: errorCode(error), attempt: attempts, members: items.length, lockFirst, step });
      switch (step) {
        case 'lock-first':
          lockFirst = true;
          break;
        case 'again':
          break;
        case 'split':
          return splitIntoMembers(items, attempt, { ...options, lockFirst });
        case 'answer':
          return items.map(() => ({ status: 'rejected', reason: error }));
        default:
          return step satisfies never;
      }
    }
  }
}

/**
 * Members of a split batch run alone, SPLIT_IN_FLIGHT at a time: a split follows an error that
 * may be the database's, and all of a 256-member batch at once would take every connection of
 * the pool for statements that may well fail the same way.
 */
const SPLIT_IN_FLIGHT = 4;

async function splitIntoMembers<I, O>(items: readonly I[], attempt: (items: readonly I[], lockFirst: boolean) => Promise<O[]>, options: RetryOptions): Promise<PromiseSettledResult<O>[]> {
  const results = new Array<PromiseSettledResult<O>>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(SPLIT_IN_FLIGHT, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = (await runBatch([items[index]!], attempt, options))[0]!;
    }
  }));
  return results;
}

/** The value of a settled result, or its error thrown. */
export function settledValue<O>(result: PromiseSettledResult<O>): O {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

/** Runs one transaction (one statement, or a whole sql.begin) under the policy: `run` gets whether to lock first. */
export async function retryTransaction<T>(run: (lockFirst: boolean) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const [result] = await runBatch([null], async (_items, lockFirst) => [await run(lockFirst)], options);
  return settledValue(result!);
}
