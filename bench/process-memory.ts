// Owns the memory measurement of the service's process tree: VmRSS from /proc/<pid>/status of every
// process (supervisor, HTTP workers, job worker), each classed by its REGISTRAR_ROLE, sampled on
// a timer; the peaks, and the series for a chart.
import { readFileSync } from 'node:fs';
import { listProcessTree } from './process-cpu.ts';

export type MemoryRole = 'supervisor' | 'http' | 'jobs';

/** One sample: bytes resident per role (summed over its processes) and in all. */
export type MemorySample = { at: number; byRole: Record<MemoryRole, number>; total: number; jobsPid: number | undefined };

export type MemoryRecorder = {
  /** The latest sample (undefined before the first). */
  latest(): MemorySample | undefined;
  /** Stops sampling; resolves with every sample taken. */
  stop(): Promise<MemorySample[]>;
};

// /proc files are read synchronously: each read takes microseconds, and sampling five times a
// second must not cost the cores it measures (a full /proc scan per sample would: ~40 ms of CPU).
function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
}

/** A `Vm...:  1234 kB` line of /proc/<pid>/status, in bytes. */
export async function readStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  const text = readProc(`/proc/${pid}/status`);
  const match = text === undefined ? null : new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** The start time of a process (field 22 of /proc/<pid>/stat): with its pid, names it for good. */
function startTimeOf(pid: number): number | undefined {
  const text = readProc(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  const value = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * The tree rooted at `root` through /proc/<pid>/task/<tid>/children (a few small reads); where the
 * kernel has no such file, one scan of /proc.
 */
async function treeOf(root: number): Promise<{ pid: number; startTime: number }[]> {
  const found: { pid: number; startTime: number }[] = [];
  let level = [root];
  for (let depth = 0; depth < 16 && level.length > 0; depth++) {
    const next: number[] = [];
    for (const pid of level) {
      const startTime = startTimeOf(pid);
      if (startTime === undefined) continue;
      found.push({ pid, startTime });
      const tasks = readProc(`/proc/${pid}/task/${pid}/children`);
      if (tasks === undefined) return listProcessTree(root);
      // The children its main thread forked (Node forks there: cluster.fork, child_process).
      next.push(...tasks.split(' ').filter(Boolean).map(Number));
    }
    level = next;
  }
  return found;
}

const roles = new Map<string, MemoryRole | undefined>();

/** The process's role, from the REGISTRAR_ROLE its supervisor forked it with (the root has none). */
async function roleOf(pid: number, startTime: number, root: number): Promise<MemoryRole | undefined> {
  if (pid === root) return 'supervisor';
  const key = `${pid}@${startTime}`;
  if (!roles.has(key)) {
    const environ = readProc(`/proc/${pid}/environ`) ?? '';
    const role = /(?:^|\0)REGISTRAR_ROLE=(http|jobs)(?:\0|$)/.exec(environ)?.[1] as MemoryRole | undefined;
    roles.set(key, role);
  }
  return roles.get(key);
}

export async function sampleMemory(root: number): Promise<MemorySample> {
  const byRole: Record<MemoryRole, number> = { supervisor: 0, http: 0, jobs: 0 };
  let total = 0;
  let jobsPid: number | undefined;
  for (const process of await treeOf(root)) {
    const rss = await readStatusBytes(process.pid, 'VmRSS');
    if (rss === undefined) continue; // exited meanwhile
    total += rss;
    // Anything else in the tree (none today) counts in the total only.
    const role = await roleOf(process.pid, process.startTime, root);
    if (role) byRole[role] += rss;
    if (role === 'jobs') jobsPid = process.pid;
  }
  return { at: Date.now(), byRole, total, jobsPid };
}

/** Samples the tree rooted at `root` every `intervalMs` until stopped (one sample at a time). */
export function recordMemory(root: number, intervalMs = 200): MemoryRecorder {
  const samples: MemorySample[] = [];
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      samples.push(await sampleMemory(root).catch(() => ({ at: Date.now(), byRole: { supervisor: 0, http: 0, jobs: 0 }, total: 0, jobsPid: undefined })));
      const wait = Math.max(0, intervalMs - (Date.now() - started));
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, wait).unref();
      });
    }
  })();
  return {
    latest: () => samples.at(-1),
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      return samples.filter((s) => s.total > 0);
    },
  };
}
