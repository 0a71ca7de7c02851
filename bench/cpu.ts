// Owns the `cpu` scenario: the service's CPU-bound work alone, with no database and no network,
// through the service's own thread pool (src/runtime/thread-pool.ts) with 1 thread and with N,
// and the speed-up. Two kinds of work, each the very functions and task sizes the service runs:
// an import file's chunks parsed and validated (csv-chunk.thread.ts: csv-parse, the POST /register
// schema, normalization, a manage token per row; the import task's chunks, 2 per thread in flight, as
// import-csv.task.ts), and emails' MIME built (email-mime.thread.ts, in batches of MIME_BATCH,
// 2 per thread in flight, as the SMTP transport).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildEmail, type EmailMessage } from '../src/domain/email-message.ts';
import type { Chunk, ColumnIndexes } from '../src/domain/import-rows.ts';
import { MIME_BATCH } from '../src/jobs/email/mail-transport.ts';
import { IMPORT_BATCH_ROWS, IMPORT_CHUNK_BYTES } from '../src/jobs/tasks/import-csv.task.ts';
import { planChunks } from '../src/runtime/csv-chunk.thread.ts';
import { createThreadPool, type ThreadPool } from '../src/runtime/thread-pool.ts';
import { htmlTable, paragraph } from './html.ts';
import { writeImportFile } from './import-csv-file.ts';
import { describeMachine } from './machine.ts';
import { defineScenario } from './scenario.ts';
import { formatTable, type TextTable } from './text-table.ts';

const MAX_RECORD_BYTES = 64 * 1024;

const cpuFlags = {
  rows: { type: 'integer', description: 'rows of the import file parsed', default: 300_000, min: 1_000, max: 10_000_000 },
  emails: { type: 'integer', description: 'emails whose MIME is built', default: 20_000, min: 100, max: 1_000_000 },
  threads: { type: 'integer', description: 'threads of the second run (the first has 1)', default: 2, min: 2, max: 64 },
  'chunk-kib': { type: 'integer', description: 'import chunk size, KiB (the import task\'s by default)', default: IMPORT_CHUNK_BYTES / 1024, min: 16, max: 65_536 },
  rounds: { type: 'integer', description: 'timed rounds per case and thread count (the median is reported)', default: 3, min: 1, max: 20 },
} as const;

type Timing = { ms: number; cpuMs: number; items: number; check: string };

/** Runs `tasks` with at most `limit` in flight, in order, as the service's callers do. */
async function runBounded<T>(tasks: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  return results;
}

async function timed(items: number, work: () => Promise<string>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const check = await work();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { ms, cpuMs: (used.user + used.system) / 1000, items, check };
}

function median(timings: Timing[]): Timing {
  return [...timings].sort((a, b) => a.ms - b.ms)[Math.floor(timings.length / 2)]!;
}

function sampleMessages(count: number): EmailMessage[] {
  const options = { from: 'Registrar <no-reply@localhost>', publicUrl: 'http://127.0.0.1:3000', messageDomain: 'localhost' };
  const names = ['Ada Lovelace', 'Karen Spärck Jones', 'Núñez, Grace', "Tim O'Brien"];
  return Array.from({ length: count }, (_, i) => buildEmail({
    eventId: String(i + 1),
    kind: i % 7 === 0 ? 'waitlisted' : 'enrolled',
    registrationId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    name: names[i % names.length]!,
    email: `student${i + 1}@students.example.org`,
    courseId: `course-${i % 20}`,
    courseTitle: `Course <${i % 20}> & friends`,
    waitlistPosition: i % 7 === 0 ? i : null,
    offerUntil: null,
  }, { ...options, manageToken: 'x'.repeat(43) }));
}

export const cpuScenario = defineScenario({
  name: 'cpu',
  summary: 'the CPU-bound work alone (import parsing and validation, email MIME) on the thread pool: 1 thread vs N, the speed-up',
  flags: cpuFlags,
  async run(flags, context) {
    const dir = await mkdtemp(path.join(tmpdir(), 'registrar-bench-cpu-'));
    context.cleanup.add('remove the cpu scenario\'s file', () => rm(dir, { recursive: true, force: true }));
    const file = await writeImportFile({ file: path.join(dir, 'import.csv'), rows: flags.rows, courses: 20, duplicatePercent: 1, seed: 42 });
    const plan = planChunks({ file: file.file, chunkBytes: flags['chunk-kib'] * 1024, maxRecordBytes: MAX_RECORD_BYTES });
    if ('failure' in plan) throw new Error(plan.failure);
    const messages = sampleMessages(flags.emails);
    const batches: EmailMessage[][] = [];
    for (let i = 0; i < messages.length; i += MIME_BATCH) batches.push(messages.slice(i, i + MIME_BATCH));
    context.log(`cpu: ${file.rows} rows (${(file.bytes / 2 ** 20).toFixed(1)} MiB, ${plan.chunks.length} chunks), ${messages.length} emails in ${batches.length} batches of ${MIME_BATCH}`);

    const parse = (pool: ThreadPool, chunks: readonly Chunk[], columns: ColumnIndexes) => async () => {
      const batches = (await runBounded(chunks.map((chunk) => () => pool.parseChunk({ ...chunk, file: file.file, columns, maxRecordBytes: MAX_RECORD_BYTES, batchRows: IMPORT_BATCH_ROWS, resumeAfterLine: 0 })), pool.threads * 2)).flat();
      return `${batches.reduce((n, b) => n + b.rows, 0)} rows, ${batches.reduce((n, b) => n + b.errors.length, 0)} errors`;
    };
    const mime = (pool: ThreadPool, work: readonly EmailMessage[][]) => async () => {
      const results = await runBounded(work.map((batch) => () => pool.composeMime(batch)), pool.threads * 2);
      return `${results.reduce((n, r) => n + r.length, 0)} messages, ${results.reduce((n, r) => n + r.reduce((b, raw) => b + raw.length, 0), 0)} bytes`;
    };

    const cases = [
      { label: 'import chunks: parse + validate + manage token', unit: 'rows', items: file.rows, run: (pool: ThreadPool) => parse(pool, plan.chunks, plan.columns), warm: (pool: ThreadPool) => parse(pool, plan.chunks.slice(0, pool.threads * 2), plan.columns) },
      { label: 'emails: MIME', unit: 'emails', items: messages.length, run: (pool: ThreadPool) => mime(pool, batches), warm: (pool: ThreadPool) => mime(pool, batches.slice(0, pool.threads * 8)) },
    ];
    const results = new Map<string, Timing[]>();
    for (const threads of [1, flags.threads]) {
      const pool = createThreadPool(threads);
      context.cleanup.add(`close the pool of ${threads}`, () => pool.close());
      try {
        for (const each of cases) {
          await each.warm(pool)(); // the threads' first tasks load modules and compile
          const rounds: Timing[] = [];
          for (let round = 0; round < flags.rounds; round++) {
            context.signal.throwIfAborted();
            rounds.push(await timed(each.items, each.run(pool)));
          }
          const best = median(rounds);
          context.log(`cpu: ${each.label}, ${threads} thread(s): ${best.ms.toFixed(0)} ms (rounds ${rounds.map((r) => r.ms.toFixed(0)).join(', ')})`);
          results.set(`${each.label}/${threads}`, rounds);
        }
      } finally {
        await pool.close();
      }
    }

    const failures: string[] = [];
    const rows: string[][] = [];
    for (const each of cases) {
      const one = median(results.get(`${each.label}/1`)!);
      for (const threads of [1, flags.threads]) {
        const t = median(results.get(`${each.label}/${threads}`)!);
        if (t.check !== one.check) failures.push(`${each.label}: ${threads} threads gave ${t.check}, 1 thread ${one.check}`);
        rows.push([each.label, String(threads), `${t.ms.toFixed(0)} ms`, `${Math.round(t.items / (t.ms / 1000)).toLocaleString('en-US')} ${each.unit}/s`, `${(one.ms / t.ms).toFixed(2)}x`, `${t.cpuMs.toFixed(0)} ms`, t.check]);
      }
    }
    const table: TextTable = {
      title: `cpu: the thread pool alone, 1 thread vs ${flags.threads} (median of ${flags.rounds} rounds)`,
      headers: ['work', 'threads', 'time', 'rate', 'speed-up', 'CPU (all threads)', 'output'],
      rows,
    };
    const note = 'CPU is this process\'s (its threads included, process.cpuUsage()); the speed-up is the 1-thread time over the N-thread time, the same work in the same process.';
    return {
      title: 'Registrar bench: cpu',
      meta: [describeMachine(), `${file.rows} rows in ${plan.chunks.length} chunks of ${flags['chunk-kib']} KiB; ${messages.length} emails in batches of ${MIME_BATCH}`],
      text: `${formatTable(table)}\n${note}`,
      sections: [{ heading: 'Speed-up', html: htmlTable(table) + paragraph(note) }],
      failures,
      verdict: failures.length === 0 ? 'Outputs: the same with 1 thread and with N' : 'Outputs differ between thread counts',
    };
  },
});
