// The worker-thread pool (piscina) for CPU-bound work: planning an import file's chunks, then
// parsing and validating them (csv-chunk.thread.ts), and building emails' MIME
// (email-mime.thread.ts). Bounded twice: `threads` threads, and a queue of at most 4 tasks per
// thread, which its two callers never reach: an import keeps at most 2 chunks per thread in
// flight, the SMTP transport at most 2 MIME batches per thread. A caller that has its 2 per
// thread in flight waits (backpressure) instead of piling work into memory.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { EmailMessage, EmailThreads } from '../domain/email-message.ts';
import type { ImportBatch } from '../db/queries/imports.queries.ts';
import type { ImportThreads, Plan } from '../domain/import-rows.ts';
import { unpackTexts } from './packed-texts.ts';

export type ThreadPool = ImportThreads & EmailThreads & {
  stats(): { queued: number; utilization: number; threads: number };
  close(): Promise<void>;
};

const EMAIL_MIME_THREAD = new URL('./email-mime.thread.ts', import.meta.url).href;

export function createThreadPool(threads = availableParallelism()): ThreadPool {
  const pool = new Piscina({
    filename: new URL('./csv-chunk.thread.ts', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    maxQueue: threads * 4,
    idleTimeout: 30_000,
  });
  return {
    threads,
    planChunks: (task) => pool.run(task, { name: 'planChunks' }) as Promise<Plan>,
    parseChunk: (task) => pool.run(task) as Promise<ImportBatch[]>,
    composeMime: async (messages: EmailMessage[]) => unpackTexts(await pool.run(messages, { filename: EMAIL_MIME_THREAD, name: 'composeMime' }) as Uint8Array),
    stats: () => ({ queued: pool.queueSize, utilization: pool.utilization, threads: pool.threads.length }),
    close: () => pool.close(),
  };
}
