// Owns PostgreSQL's own ceiling for a rush's work: the same registrations sent straight to the
// database (no HTTP, no service) on a fresh migrated database with the same courses, C at a time
// in a closed loop. A strategy decides how registrations become statements; each registration's
// latency is from its call to its outcome.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { migrateDatabase } from '../src/db/migrate.ts';
import { retryTransaction } from '../src/db/retry-policy.ts';
import { normalizeStudent } from '../src/domain/registration.ts';
import type { CourseSpec } from './admin-api.ts';
import { type CpuWindow, startCpuStopwatch } from './cpu-window.ts';
import type { ObservedAnswer } from '../test/support/invariants.ts';
import { epochNow, observedAnswers, runClosedLoop, type StudentRequest } from '../test/support/rush.ts';
import { startProgress } from './progress.ts';

export type DatabaseStrategy = 'statement-per-registration';

export const DATABASE_STRATEGIES: Readonly<Record<DatabaseStrategy, string>> = {
  'statement-per-registration': 'one SELECT registrar_register_batch(...) of one registration per registration, autocommit (one transaction each), run again as the service\'s retry policy decides',
};

/** The embedded PostgreSQL allows 300 connections; the rest are for the bench's own reads. */
export const MAX_CEILING_CONNECTIONS = 256;

/** A registration as the service hands it to the database: trimmed, its email key, a fresh manage token. */
type PreparedRegistration = { course: string; name: string; email: string; emailKey: string; manageToken: string };

/** What registrar_register_batch answers for one registration: an outcome and, when one was made or found, the registration. */
type RegisterResult = { outcome: string; registration?: { id: string } };

export type DatabaseAnswer = {
  request: StudentRequest;
  startedAt: number;
  endedAt: number;
  /** registrar_register_batch's outcome (created, existing, course-full, ...), or 'error'. */
  outcome: string;
  registrationId?: string;
  error?: string;
};

export type DatabaseCeiling = {
  strategy: DatabaseStrategy;
  connections: number;
  /** The measured registrations, in the order sent; the warm-up's apart. */
  answers: DatabaseAnswer[];
  warmupAnswers: DatabaseAnswer[];
  start: number;
  end: number;
  cpu: CpuWindow;
};

export type CeilingOptions = {
  databaseUrl: string;
  courses: readonly CourseSpec[];
  /** Sent first, not measured: warms caches and plans as the rush's warm-up does. */
  warmup: readonly StudentRequest[];
  requests: readonly StudentRequest[];
  concurrency: number;
  strategy: DatabaseStrategy;
  postmasterPid: number;
  signal: AbortSignal;
};

type Register = (registration: PreparedRegistration) => Promise<RegisterResult>;

function registerWith(sql: postgres.Sql, strategy: DatabaseStrategy): Register {
  switch (strategy) {
    case 'statement-per-registration':
      // The service's own function (src/db/queries/registrations.queries.ts) with a batch of one,
      // without an idempotency key: lock last, then as its retry policy decides (src/db/retry-policy.ts).
      return async function registerOne(r) {
        const [row] = await retryTransaction((lockFirst) => sql<{ result: RegisterResult }[]>`
          SELECT (registrar_register_batch(${lockFirst}::boolean, ARRAY[${r.course}]::text[], ARRAY[${r.name}]::text[], ARRAY[${r.email}]::text[],
            ARRAY[${r.emailKey}]::text[], ARRAY[${r.manageToken}]::text[],
            ARRAY[NULL]::bytea[], ARRAY[NULL]::bytea[], ARRAY[NULL]::bytea[], ARRAY[NULL]::bytea[]))[1] AS result`);
        if (!row) throw new Error('registrar_register_batch returned no row');
        return row.result;
      };
    default:
      return strategy satisfies never;
  }
}

function prepare(request: StudentRequest): PreparedRegistration {
  const { name, email, emailKey } = normalizeStudent(request);
  return { course: request.course.trim(), name, email, emailKey, manageToken: randomBytes(16).toString('hex') };
}

async function registerAll(register: Register, requests: readonly StudentRequest[], concurrency: number, signal: AbortSignal, label: string): Promise<DatabaseAnswer[]> {
  const prepared = requests.map(prepare);
  const progress = startProgress(label, requests.length, { unit: 'registrations' });
  const answers = await runClosedLoop(requests.length, concurrency, async (index) => {
    const answer: DatabaseAnswer = { request: requests[index]!, startedAt: epochNow(), endedAt: 0, outcome: 'error' };
    try {
      const result = await register(prepared[index]!);
      answer.outcome = result.outcome;
      if (result.registration?.id !== undefined) answer.registrationId = result.registration.id;
    } catch (error) {
      answer.error = error instanceof Error ? error.message : String(error);
    }
    answer.endedAt = epochNow();
    return answer;
  }, { signal, progress });
  signal.throwIfAborted();
  return answers;
}

export async function measureDatabaseCeiling(options: CeilingOptions): Promise<DatabaseCeiling> {
  await migrateDatabase(options.databaseUrl);
  const connections = Math.max(1, Math.min(options.concurrency, MAX_CEILING_CONNECTIONS));
  const sql = postgres(options.databaseUrl, { max: connections, onnotice: () => {}, connect_timeout: 10 });
  try {
    for (const course of options.courses) {
      await sql`INSERT INTO courses (id, title, capacity, waitlist_capacity) VALUES (${course.id}, ${course.title}, ${course.capacity}, ${course.waitlistCapacity})`;
    }
    // Every connection open before the clock starts, as the service's pools are.
    await Promise.all(Array.from({ length: connections }, () => sql`SELECT pg_sleep(0.01)`));
    const register = registerWith(sql, options.strategy);
    const warmupAnswers = await registerAll(register, options.warmup, connections, options.signal, 'database only: warm-up');

    const watch = await startCpuStopwatch({ postgres: options.postmasterPid });
    const start = epochNow();
    const answers = await registerAll(register, options.requests, connections, options.signal, 'database only');
    const end = epochNow();
    const cpu = await watch.read();
    return { strategy: options.strategy, connections, answers, warmupAnswers, start, end, cpu };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const STATUS_BY_OUTCOME: Readonly<Record<string, number>> = { created: 201, existing: 200, 'course-full': 409, 'registration-closed': 409, 'course-not-found': 404 };

/** The outcomes as the invariant check sees HTTP answers: created is a 201, existing a 200, ... */
export function observedDatabaseAnswers(answers: readonly DatabaseAnswer[]): ObservedAnswer[] {
  return observedAnswers(answers.map((a) => ({
    request: a.request,
    // An error is an answer lost (status 0): a row it may have committed is not held against it.
    status: STATUS_BY_OUTCOME[a.outcome] ?? 0,
    ...(a.registrationId !== undefined ? { registrationId: a.registrationId } : {}),
    ...(a.outcome === 'course-full' || a.outcome === 'registration-closed' ? { problemType: `/problems/${a.outcome}` } : {}),
  })));
}
