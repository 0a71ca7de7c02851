// What one registrar_register_batch call costs PostgreSQL's CPU: lock-last batches of new
// students spread over 100 courses (as `rush --spread` makes them), through registerBatch
// (src/db/queries/registrations.queries.ts) on one connection of the service's kind, with the
// backend's utime + stime (/proc/<pid>/stat) over the calls. With <commit>, the bodies of
// register-batch.sql and record-events.sql at that commit are installed beside this tree's
// (registrar_*_before) and the two are measured in alternating rounds on one embedded
// PostgreSQL. With --statements, pg_stat_statements (track = all) lists the statements the
// calls ran, nested ones included, by total time. docs/benchmarks.md, "The fixed cost of a batch".
// Usage: node scripts/register-batch-cpu.ts [--before <commit>] [--batch 8] [--calls 1000] [--rounds 3] [--statements]
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectDatabase, type Sql } from '../src/db/database.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { registerBatch } from '../src/db/queries/registrations.queries.ts';
import { startEmbeddedDatabase } from '../src/runtime/embedded-database.ts';

const { values: flags } = parseArgs({
  options: {
    before: { type: 'string' },
    batch: { type: 'string', default: '8' },
    calls: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    statements: { type: 'boolean', default: false },
  },
});
const BATCH = Number(flags.batch);
const CALLS = Number(flags.calls);
const COURSES = 100;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

const dir = await mkdtemp(path.join(tmpdir(), 'registrar-batch-cpu-'));
const database = await startEmbeddedDatabase({
  dataDir: dir,
  settings: flags.statements
    ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on', 'pg_stat_statements.max': '10000' }
    : {},
});
try {
  await migrateDatabase(database.url);
  const sql = connectDatabase(database.url, { max: 1, applicationName: 'register-batch-cpu' });
  if (flags.before) await installBefore(sql, flags.before);
  await sql`INSERT INTO courses (id, title, capacity, waitlist_capacity)
    SELECT 'c' || i, 'Course ' || i, 1000000, 0 FROM generate_series(0, ${COURSES - 1}) AS i`;
  if (flags.statements) await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  const [backend] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
  if (!backend) throw new Error('no backend pid');
  const { pid } = backend;

  let students = 0;
  async function cpuPerCall(fn: string): Promise<{ cpuMs: number; wallMs: number }> {
    const startCpu = await backendTicks(pid);
    const started = process.hrtime.bigint();
    for (let call = 0; call < CALLS; call += 1) {
      const batch = Array.from({ length: BATCH }, () => {
        const email = `s${(students += 1)}@example.org`;
        return { courseId: `c${Math.floor(Math.random() * COURSES)}`, name: email, email, emailKey: email, manageToken: email, idempotency: null };
      });
      const results = await registerBatch(withFunction(sql, fn), batch);
      const failed = results.find((r) => r.status === 'rejected' || r.value.outcome !== 'created');
      if (failed) throw new Error(`a member was not created: ${JSON.stringify(failed)}`);
    }
    const wall = Number(process.hrtime.bigint() - started) / 1e6;
    return { cpuMs: ((await backendTicks(pid)) - startCpu) * (1000 / TICKS) / CALLS, wallMs: wall / CALLS };
  }

  // Warm-up: plans cached, tables past their first pages.
  await cpuPerCall('registrar_register_batch');
  if (flags.before) await cpuPerCall('registrar_register_batch_before');
  if (flags.statements) await sql`SELECT pg_stat_statements_reset()`;
  const figures: Record<string, { cpuMs: number; wallMs: number }[]> = {};
  for (let round = 0; round < Number(flags.rounds); round += 1) {
    for (const fn of flags.before ? ['registrar_register_batch_before', 'registrar_register_batch'] : ['registrar_register_batch']) {
      (figures[fn === 'registrar_register_batch' ? 'this tree' : flags.before!] ??= []).push(await cpuPerCall(fn));
    }
  }
  console.log(`batches of ${BATCH} over ${COURSES} courses, ${CALLS} calls per round, backend CPU per call (wall per call)`);
  for (const [name, runs] of Object.entries(figures)) {
    const cpu = runs.map((r) => r.cpuMs).toSorted((a, b) => a - b);
    console.log(`${name.padEnd(12)} median ${cpu[Math.floor(cpu.length / 2)]!.toFixed(2)} ms/call, ${(cpu[Math.floor(cpu.length / 2)]! / BATCH).toFixed(3)} ms/registration  (rounds: ${runs.map((r) => `${r.cpuMs.toFixed(2)} (${r.wallMs.toFixed(2)})`).join(', ')})`);
  }
  if (flags.statements) {
    const rows = await sql<{ calls: string; total_ms: number; mean_ms: number; plans: string; plan_ms: number; query: string }[]>`
      SELECT calls::text, round(total_exec_time::numeric, 1)::float8 AS total_ms, round(mean_exec_time::numeric, 4)::float8 AS mean_ms,
             plans::text, round(total_plan_time::numeric, 1)::float8 AS plan_ms, left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 110) AS query
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_exec_time DESC LIMIT 40`;
    console.log('calls\ttotal ms\tmean ms\tplans\tplan ms\tquery');
    for (const row of rows) console.log(`${row.calls}\t${row.total_ms}\t${row.mean_ms}\t${row.plans}\t${row.plan_ms}\t${row.query}`);
  }
  await sql.end({ timeout: 5 });
} finally {
  await database.stop();
  await rm(dir, { recursive: true, force: true });
}

/** The backend's CPU so far, in clock ticks: fields 14 and 15 (utime, stime) of /proc/<pid>/stat. */
async function backendTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** The bodies at <commit>, beside this tree's: registrar_register_batch_before calls registrar_record_events_before. */
async function installBefore(sql: Sql, commit: string): Promise<void> {
  const show = (file: string) => execFileSync('git', ['show', `${commit}:src/db/functions/${file}`], { encoding: 'utf8' });
  await sql.unsafe(show('record-events.sql').replaceAll('FUNCTION registrar_record_events(', 'FUNCTION registrar_record_events_before('));
  await sql.unsafe(show('register-batch.sql')
    .replace('FUNCTION registrar_register_batch(', 'FUNCTION registrar_register_batch_before(')
    .replaceAll('registrar_record_events(', 'registrar_record_events_before('));
}

/** A client whose registrar_register_batch calls go to `fn`. */
function withFunction(sql: Sql, fn: string): Sql {
  if (fn === 'registrar_register_batch') return sql;
  return new Proxy(sql, {
    apply(target, self, args: [TemplateStringsArray, ...unknown[]]) {
      const [strings, ...rest] = args;
      const renamed = Object.assign(strings.map((s) => s.replace('registrar_register_batch(', `${fn}(`)), { raw: strings.raw });
      return Reflect.apply(target, self, [renamed, ...rest]);
    },
  });
}
