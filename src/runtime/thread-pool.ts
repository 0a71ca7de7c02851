// The worker-thread pool (piscina) for CPU-bound work: planning an import file's chunks, then
// parsing and validating them.
// Bounded twice: `threads` threads, and a queue of at most 2 tasks per thread; a caller that
// finds it full waits (backpressure) instead of piling chunks of a file into memory.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { ChunkResult, ImportThreads, Plan } from '../domain/import-rows.ts';

export type ThreadPool = ImportThreads & {
  stats(): { queued: number; utilization: number; threads: number };
  close(): Promise<void>;
};

export function createThreadPool(threads = availableParallelism()): ThreadPool {
  const pool = new Piscina({
    filename: new URL('./csv-chunk.thread.ts', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    maxQueue: threads * 2,
    idleTimeout: 30_000,
  });
  return {
    threads,
    planChunks: (task) => pool.run(task, { name: 'planChunks' }) as Promise<Plan>,
    parseChunk: (task) => pool.run(task) as Promise<ChunkResult>,
    stats: () => ({ queued: pool.queueSize, utilization: pool.utilization, threads: pool.threads.length }),
    close: () => pool.close(),
  };
}
