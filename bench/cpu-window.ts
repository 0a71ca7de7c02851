// Owns the CPU measurement of a window of a run: the service's and PostgreSQL's process trees
// (from /proc, where available) and the bench process itself (load generator and SMTP server).
import { type CpuSample, type CpuUsage, cpuAccountingAvailable, cpuBetween, machineBusyMs, sampleCpu } from './process-cpu.ts';

export type CpuWindow = {
  service: CpuUsage | undefined;
  benchMs: number;
  /** Everything else the machine ran in the window (other users' work, the kernel): it took cores from the run. */
  otherMs: number | undefined;
};

export type CpuStopwatch = { read(): Promise<CpuWindow> };

/** What the CPU figures count, for the reports. */
export const CPU_COUNTED = 'CPU = utime+stime from /proc/<pid>/stat, the difference between the start and the end of the window, '
  + 'over "service": the supervisor, its HTTP workers and its job worker, and "postgres": the postmaster and all its children '
  + '(backends, background processes); processes that exited in the window count through their parent\'s cutime+cstime. '
  + '"bench" is this process (load generator and SMTP server), from process.cpuUsage(); it runs on the same cores. '
  + '"other" is the rest of the machine\'s busy time in the window (/proc/stat): work that was not the run\'s.';

export async function startCpuStopwatch(roots: Record<string, number>): Promise<CpuStopwatch> {
  const before: CpuSample | undefined = cpuAccountingAvailable() ? await sampleCpu(roots) : undefined;
  const machineBefore = await machineBusyMs();
  const benchBefore = process.cpuUsage();
  return {
    async read() {
      const bench = process.cpuUsage(benchBefore);
      const machineAfter = await machineBusyMs();
      const service = before ? cpuBetween(before, await sampleCpu(roots)) : undefined;
      const benchMs = (bench.user + bench.system) / 1000;
      const otherMs = machineBefore === undefined || machineAfter === undefined || service === undefined
        ? undefined
        : Math.max(0, machineAfter - machineBefore - service.totalMs - benchMs);
      return { service, benchMs, otherMs };
    },
  };
}
