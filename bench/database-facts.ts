// Owns what the bench reads back from the service's database after a run (read-only): courses and
// counters, every registration with its computed waitlist position, the email facts.
import postgres from 'postgres';
import { readInvariantSnapshot, type CourseState, type StoredRegistration } from '../test/support/invariants.ts';

export type DatabaseFacts = {
  courses: CourseState[];
  registrations: StoredRegistration[];
  events: number;
  emailsRecordedSent: number;
  emailsRecordedFailed: number;
};

export async function readDatabaseFacts(databaseUrl: string): Promise<DatabaseFacts> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10, idle_timeout: 5 });
  try {
    return await sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
      const { courses, registrations } = await readInvariantSnapshot(tx);
      const [events] = await tx<{ n: number }[]>`SELECT count(*)::int AS n FROM registration_events`;
      const deliveries = await tx<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM email_deliveries GROUP BY status`;
      return {
        courses,
        registrations,
        events: events?.n ?? 0,
        emailsRecordedSent: deliveries.find((d) => d.status === 'sent')?.n ?? 0,
        emailsRecordedFailed: deliveries.find((d) => d.status === 'failed')?.n ?? 0,
      };
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Polls until the job worker's lease keeper has written a heartbeat: its runners are up. */
export async function waitForJobWorker(databaseUrl: string, timeoutMs: number): Promise<boolean> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10, idle_timeout: 5 });
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM job_worker_heartbeats`;
      if ((row?.n ?? 0) > 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
