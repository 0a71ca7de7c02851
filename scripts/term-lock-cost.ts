// What reading a term's limit under its share lock (register-batch.sql) costs the single-course
// hot path: lock-last batches of 256 new students straight on the database, in a course of a
// term and in one without, with the function of this tree and with the body at <commit>
// (installed beside it as registrar_register_batch_before), in alternating rounds on one
// embedded PostgreSQL. docs/benchmarks.md, "The term limit's lock".
// Usage: node scripts/term-lock-cost.ts <commit> [rounds]
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectDatabase } from '../src/db/database.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { startEmbeddedDatabase } from '../src/runtime/embedded-database.ts';

const [commit, roundsText = '5'] = process.argv.slice(2);
if (!commit) throw new Error('usage: node scripts/term-lock-cost.ts <commit> [rounds]');
const BATCH = 256;
const BATCHES_PER_ROUND = 8;

const dir = await mkdtemp(path.join(tmpdir(), 'registrar-term-cost-'));
const database = await startEmbeddedDatabase({ dataDir: dir });
try {
  await migrateDatabase(database.url);
  const sql = connectDatabase(database.url, { max: 2, applicationName: 'term-lock-cost' });
  const before = execFileSync('git', ['show', `${commit}:src/db/functions/register-batch.sql`], { encoding: 'utf8' })
    .replace('CREATE OR REPLACE FUNCTION registrar_register_batch(', 'CREATE OR REPLACE FUNCTION registrar_register_batch_before(');
  await sql.unsafe(before);
  await sql`INSERT INTO terms (id, title, max_courses_per_student) VALUES ('cost', 'Cost', 5)`;
  let students = 0;
  async function microsPerRegistration(fn: string, term: string | null): Promise<number> {
    const course = `cost-${fn.length}-${term ?? 'none'}-${students}`;
    await sql`INSERT INTO courses (id, title, capacity, waitlist_capacity, term_id) VALUES (${course}, 'Cost', 1000000, 0, ${term})`;
    let total = 0n;
    for (let b = 0; b < BATCHES_PER_ROUND; b += 1) {
      const emails = Array.from({ length: BATCH }, () => `s${(students += 1)}@example.org`);
      const started = process.hrtime.bigint();
      await sql.unsafe(`SELECT ${fn}(false, $1, $2, $3, $3, $4, $5, $5, $5, $5, 'student')`, [
        emails.map(() => course), emails, emails, emails.map(() => null), emails.map(() => null),
      ] as never[]);
      total += process.hrtime.bigint() - started;
    }
    return Number(total / 1000n) / (BATCH * BATCHES_PER_ROUND);
  }
  const figures: Record<string, number[]> = {};
  for (let round = 0; round < Number(roundsText); round += 1) {
    for (const fn of ['registrar_register_batch_before', 'registrar_register_batch']) {
      for (const term of [null, 'cost']) {
        const name = `${fn === 'registrar_register_batch' ? 'this tree' : commit} ${term ? 'term' : 'no term'}`;
        (figures[name] ??= []).push(await microsPerRegistration(fn, term));
      }
    }
  }
  for (const [name, values] of Object.entries(figures)) {
    const sorted = values.toSorted((a, b) => a - b);
    console.log(`${name.padEnd(24)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} us/registration  (rounds: ${values.map((v) => v.toFixed(0)).join(', ')})`);
  }
  await sql.end({ timeout: 5 });
} finally {
  await database.stop();
  await rm(dir, { recursive: true, force: true });
}
