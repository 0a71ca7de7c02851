// Processes as the tests see them through /proc (Linux): the live children of a pid running the
// service's code, and the processes of one service, found by the DATA_DIR in their environment.
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** State and parent pid from /proc/<pid>/stat (the command name in parentheses may hold spaces). */
async function readStat(pid: string): Promise<{ state: string; ppid: number } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, ppid: Number(fields[1]) };
}

/** Clock ticks per second of /proc's times (USER_HZ: 100 on Linux for every architecture we run on). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * When a process started, in Date.now() milliseconds (to about 10 ms): its start time (field 22
 * of /proc/<pid>/stat, ticks since boot) on a boot time read from /proc/uptime.
 */
export async function processStartedAt(pid: number): Promise<number> {
  const [stat, uptime] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile('/proc/uptime', 'utf8')]);
  const bootedAt = Date.now() - Number(uptime.split(' ')[0]) * 1_000;
  const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  return bootedAt + (startTicks / CLOCK_TICKS_PER_SECOND) * 1_000;
}

/** The children of `pid` that run the service (src/main.ts: its workers), exited ones left out. */
export async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readStat(name);
    if (!stat || stat.state === 'Z' || stat.ppid !== pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('src/main.ts')) children.push(Number(name));
  }
  return children;
}

/** Waits (bounded) for a first child of `pid` running the service; throws with `describe()` if none. */
export async function firstChild(pid: number, timeoutMs: number, describe: () => string = () => ''): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [child] = await childrenOf(pid);
    if (child !== undefined) return child;
    await sleep(50);
  }
  throw new Error(`no worker of ${pid} within ${timeoutMs} ms${describe() ? `; output:\n${describe()}` : ''}`);
}

/**
 * Processes whose environment has DATA_DIR=dataDir: npm, the supervisor, its workers, and the
 * embedded PostgreSQL's (pg_ctl passes the supervisor's environment on).
 */
export async function processesOf(dataDir: string): Promise<Array<{ pid: number; commandLine: string }>> {
  const needle = `\0DATA_DIR=${dataDir}\0`;
  const found: Array<{ pid: number; commandLine: string }> = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = `\0${await readFile(`/proc/${name}/environ`, 'utf8')}`;
      if (!environ.includes(needle)) continue;
      const stat = await readStat(name);
      if (!stat || stat.state === 'Z') continue; // exited, not yet reaped
      const commandLine = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      found.push({ pid: Number(name), commandLine });
    } catch {
      // gone while we looked, or not ours to read
    }
  }
  return found;
}

/** Waits (bounded) until no process of the service runs; returns those still running. */
export async function waitForProcessesGone(dataDir: string, timeoutMs = 30_000): Promise<Array<{ pid: number; commandLine: string }>> {
  const deadline = Date.now() + timeoutMs;
  let left = await processesOf(dataDir);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(200);
    left = await processesOf(dataDir);
  }
  return left;
}
