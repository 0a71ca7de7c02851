// Owns CPU accounting from /proc: utime+stime (and reaped children's) of whole process trees between
// two samples, so a window is charged to the service and PostgreSQL; and the machine's busy time.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

type ProcStat = { pid: number; ppid: number; startTime: number; ownTicks: number; reapedChildTicks: number };

/** CPU ticks per process tree (keyed by the tree's label), at one moment. */
export type CpuSample = { at: number; ticksPerSecond: number; trees: Map<string, Map<string, number>> };

/** CPU milliseconds used by each tree between two samples, and their total. */
export type CpuUsage = { byTree: Record<string, number>; totalMs: number };

let ticksPerSecond: number | undefined;

async function clockTicks(): Promise<number> {
  if (ticksPerSecond === undefined) {
    const value = await run('getconf', ['CLK_TCK'], { timeout: 5_000 }).then(({ stdout }) => Number(stdout.trim()), () => Number.NaN);
    ticksPerSecond = Number.isInteger(value) && value > 0 ? value : 100;
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function parseStat(pid: number, text: string): ProcStat | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime 14..17, starttime 22.
  const field = (n: number) => Number(fields[n - 3]);
  const stat = { pid, ppid: field(4), startTime: field(22), ownTicks: field(14) + field(15), reapedChildTicks: field(16) + field(17) };
  return Number.isFinite(stat.ppid) && Number.isFinite(stat.ownTicks) ? stat : undefined;
}

async function readAllStats(): Promise<ProcStat[]> {
  const stats: ProcStat[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const text = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined); // gone meanwhile
    const stat = text === undefined ? undefined : parseStat(Number(name), text);
    if (stat) stats.push(stat);
  }
  return stats;
}

/** The root and all its descendants (bounded depth), from one scan of /proc. */
function tree(stats: ProcStat[], root: number): ProcStat[] {
  const found = stats.filter((s) => s.pid === root);
  let level = found.map((s) => s.pid);
  for (let depth = 0; depth < 16 && level.length > 0; depth++) {
    const children = stats.filter((s) => level.includes(s.ppid));
    found.push(...children);
    level = children.map((s) => s.pid);
  }
  return found;
}

/** The processes of the tree rooted at `root` (it first, then its descendants), from one scan of /proc. */
export async function listProcessTree(root: number): Promise<{ pid: number; ppid: number; startTime: number }[]> {
  return tree(await readAllStats(), root).map(({ pid, ppid, startTime }) => ({ pid, ppid, startTime }));
}

export function cpuAccountingAvailable(): boolean {
  return process.platform === 'linux';
}

/**
 * Samples the trees rooted at `roots` (label -> pid). A process is keyed by pid and start time,
 * so a reused pid is never mistaken for the process it replaced.
 */
export async function sampleCpu(roots: Record<string, number>): Promise<CpuSample> {
  const perSecond = await clockTicks();
  const stats = await readAllStats();
  const trees = new Map<string, Map<string, number>>();
  for (const [label, pid] of Object.entries(roots)) {
    const ticks = new Map<string, number>();
    for (const s of tree(stats, pid)) ticks.set(`${s.pid}@${s.startTime}`, s.ownTicks + s.reapedChildTicks);
    trees.set(label, ticks);
  }
  return { at: Date.now(), ticksPerSecond: perSecond, trees };
}

/**
 * Sum over each tree after minus sum before. A child that exited in between has its whole
 * lifetime added to its parent's reaped-children time, and its time before the window
 * subtracted with the `before` sample, so the difference is exact as long as its parent (in the
 * tree) reaped it.
 */
export function cpuBetween(before: CpuSample, after: CpuSample): CpuUsage {
  const byTree: Record<string, number> = {};
  let totalMs = 0;
  for (const [label, afterTicks] of after.trees) {
    const sum = (ticks: Map<string, number> | undefined) => [...(ticks?.values() ?? [])].reduce((a, b) => a + b, 0);
    const ms = ((sum(afterTicks) - sum(before.trees.get(label))) * 1000) / after.ticksPerSecond;
    byTree[label] = Math.max(0, ms);
    totalMs += Math.max(0, ms);
  }
  return { byTree, totalMs };
}

/** Non-idle CPU time of the whole machine (all cores, all processes) since boot, in ms; /proc/stat. */
export async function machineBusyMs(): Promise<number | undefined> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (!line.startsWith('cpu ') || fields.length < 8 || fields.some((n) => !Number.isFinite(n))) return undefined;
  // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
  const busy = fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!;
  return (busy * 1000) / (await clockTicks());
}
