// What a join costs PostgreSQL: batches of registrar_queue_join_batch (as the group commit of
// src/db/queries/queue.queries.ts sends them) straight on an embedded PostgreSQL, before the
// course opens, timed per member; then the statements inside them (pg_stat_statements,
// track=all) and the functions (track_functions=all), per join. docs/benchmarks.md, "Joins:
// where PostgreSQL's time goes".
// Usage: node scripts/queue-join-cost.ts [batches] [batch size]
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectDatabase } from '../src/db/database.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { startEmbeddedDatabase } from '../src/runtime/embedded-database.ts';

const [batchesText = '100', sizeText = '128'] = process.argv.slice(2);
const BATCHES = Number(batchesText);
const SIZE = Number(sizeText);
const COURSE = 'join-cost';

const hex = (text: string) => createHash('sha256').update(text).digest('hex');

const dir = await mkdtemp(path.join(tmpdir(), 'registrar-join-cost-'));
const database = await startEmbeddedDatabase({
  dataDir: dir,
  settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', track_functions: 'all' },
});
try {
  await migrateDatabase(database.url);
  const sql = connectDatabase(database.url, { max: 1, applicationName: 'queue-join-cost' });
  await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  await sql`INSERT INTO courses (id, title, capacity, waitlist_capacity, opens_at, queue_order)
    VALUES (${COURSE}, 'Join cost', 10000, 0, now() + interval '1 day', 'random')`;
  await sql`INSERT INTO queue_states (course_id, seed) VALUES (${COURSE}, ${randomBytes(32)})`;
  let student = 0;
  const batch = () => Array.from({ length: SIZE }, () => {
    student += 1;
    const token = randomBytes(32).toString('base64url');
    return { name: `Student ${student}`, email: `student${student}@queue.example.org`, token };
  });
  const run = async (members: ReturnType<typeof batch>) => {
    await sql`SELECT registrar_queue_join_batch(${members.map(() => COURSE)}::text[], ${members.map((m) => m.name)}::text[],
      ${members.map((m) => m.email)}::text[], ${members.map((m) => m.email.toLowerCase())}::text[],
      ${members.map((m) => hex(m.token))}::text[], ${members.map((m) => hex(`a${m.token}`))}::text[]) AS results`;
  };
  for (let i = 0; i < 10; i += 1) await run(batch()); // warm: plans cached
  await sql`SELECT pg_stat_statements_reset()`;
  await sql`SELECT pg_stat_reset()`;
  const perBatch: number[] = [];
  for (let i = 0; i < BATCHES; i += 1) {
    const members = batch();
    const started = process.hrtime.bigint();
    await run(members);
    perBatch.push(Number(process.hrtime.bigint() - started) / 1000 / SIZE);
  }
  const sorted = perBatch.toSorted((a, b) => a - b);
  console.log(`${BATCHES} batches of ${SIZE}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} us/join, mean ${(perBatch.reduce((a, b) => a + b, 0) / BATCHES).toFixed(1)} us/join`);
  const joins = BATCHES * SIZE;
  const rows = await sql<{ calls: string; rows: string; total: number; query: string }[]>`
    SELECT calls::text, rows::text, total_exec_time AS total, regexp_replace(query, '[[:space:]]+', ' ', 'g') AS query
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25`;
  for (const row of rows) {
    console.log(`${(row.total * 1000 / joins).toFixed(1).padStart(7)} us/join  ${(Number(row.calls) / joins).toFixed(3).padStart(7)} calls/join  ${row.query.slice(0, 160)}`);
  }
  const functions = await sql<{ funcname: string; calls: string; total: number; self: number }[]>`
    SELECT funcname, calls::text, total_time AS total, self_time AS self FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 15`;
  for (const f of functions) {
    console.log(`fn ${f.funcname.padEnd(36)} ${(Number(f.calls) / joins).toFixed(3)} calls/join  total ${(f.total * 1000 / joins).toFixed(1)} us/join  self ${(f.self * 1000 / joins).toFixed(1)} us/join`);
  }
  await sql.end({ timeout: 5 });
} finally {
  await database.stop();
  await rm(dir, { recursive: true, force: true });
}
