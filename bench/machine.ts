// Owns the description of the machine a report was measured on: cores, CPU model, memory, Node,
// and how busy its cores were just before the bench started (other work lowers every figure).
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Cores kept busy by whatever ran in the second before the bench started; undefined off Linux. */
let busyCoresAtStart: number | undefined;

async function cpuTimes(): Promise<{ idle: number; total: number } | undefined> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (!line.startsWith('cpu ') || fields.length < 5 || fields.some((n) => !Number.isFinite(n))) return undefined;
  // user nice system idle iowait irq softirq steal ...: idle and iowait are idle time.
  return { idle: fields[3]! + fields[4]!, total: fields.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/** Measures, over `ms`, how many cores other processes keep busy; returns a warning if many. */
export async function checkMachineIsQuiet(ms = 1_000): Promise<string | undefined> {
  const before = await cpuTimes();
  await sleep(ms);
  const after = await cpuTimes();
  if (!before || !after || after.total <= before.total) return undefined;
  const cores = availableParallelism();
  busyCoresAtStart = cores * (1 - (after.idle - before.idle) / (after.total - before.total));
  return busyCoresAtStart > cores * 0.25
    ? `the machine is busy (${busyCoresAtStart.toFixed(2)} of ${cores} cores in use before the bench started): other work shares the cores, the figures will be lower than on a quiet machine`
    : undefined;
}

export function describeMachine(): string {
  const model = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  const busy = busyCoresAtStart === undefined ? '' : `; ${busyCoresAtStart.toFixed(2)} cores in use by other work just before the start`;
  return `${availableParallelism()} cores (${model}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${process.platform}${busy}`;
}
