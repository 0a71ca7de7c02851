// Worker liveness. Each worker process tells the supervisor it is alive once a second, from its
// event loop, so a loop that stopped turning (an endless loop, a stuck native call, SIGSTOP)
// stops the messages too. The supervisor's monitor names the workers it has not heard from for
// WORKER_LIVENESS_TIMEOUT_MS; the supervisor kills them (SIGKILL, which a stopped process
// receives as well) and replaces them like any worker that died. Silence alone does not tell a
// stuck loop from a starved one (the job worker runs niced; on a loaded machine it may get a few
// percent of a core): a worker that is runnable or using CPU gets BUSY_BOUND_FACTOR times the
// bound, one stopped or asleep without progress the bound itself.

import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';

export const HEARTBEAT_INTERVAL_MS = 1_000;
/** Before its first message a worker is still loading its code and connecting: this much longer. */
export const STARTUP_GRACE_MS = 30_000;
/**
 * A silent worker that is runnable (state R) or whose CPU time advances is starved or busy (or
 * in an endless loop): this many times the bound before it is killed. Killing a starved job
 * worker mid-batch would send again the emails SMTP had accepted.
 */
export const BUSY_BOUND_FACTOR = 6;
/** A check this late means the supervisor itself did not run (suspended, SIGSTOP, a laptop asleep). */
const LATE_CHECK_MS = 2 * HEARTBEAT_INTERVAL_MS;

export type Heartbeat = { type: 'alive' };

/** In a worker: the heartbeat, until the process exits (or the returned function stops it). */
export function startHeartbeat(): () => void {
  const timer = setInterval(() => {
    // The callback takes a send error (the supervisor is gone): the 'disconnect' handler stops us.
    if (process.connected) process.send?.({ type: 'alive' } satisfies Heartbeat, undefined, undefined, () => undefined);
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** A process's scheduler state (R runnable, S sleeping, D in I/O, T stopped, Z exited) and CPU time. */
export type ProcessSample = { state: string; cpuTicks: number };

/**
 * /proc/<pid>/stat, on Linux: the state (field 3) and utime + stime (fields 14, 15). Elsewhere,
 * or for a process gone, undefined (the plain bound applies). A read of /proc is in memory, and
 * it is only done for a worker already silent past half the bound.
 */
export function readProcessSample(pid: number): ProcessSample | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

type Watched = { heardAt: number; heard: boolean; warned: boolean; cpuTicks: number | undefined };

export type Verdict = {
  pid: number;
  silentMs: number;
  /** warn: silent for half the bound (once per silence); kill: past its bound. */
  verdict: 'warn' | 'kill';
  /** The scheduler state read last, if any. */
  state: string | undefined;
};

/**
 * In the supervisor: when each worker was last heard from. Any message counts (the dashboard's
 * state messages too). Pure bookkeeping on a clock and a process sampler passed in, so it is
 * tested without processes.
 */
export class LivenessMonitor {
  private readonly watched = new Map<number, Watched>();
  private readonly timeoutMs: number;
  private readonly sample: (pid: number) => ProcessSample | undefined;
  private lastCheckAt: number | undefined;

  /** timeoutMs 0: never judge (WORKER_LIVENESS_TIMEOUT_MS=0, e.g. to pause a worker in a debugger). */
  constructor(timeoutMs: number, sample: (pid: number) => ProcessSample | undefined = readProcessSample) {
    this.timeoutMs = timeoutMs;
    this.sample = sample;
  }

  watch(pid: number, now: number): void {
    this.watched.set(pid, { heardAt: now, heard: false, warned: false, cpuTicks: undefined });
  }

  heard(pid: number, now: number): void {
    const entry = this.watched.get(pid);
    if (entry) {
      entry.heardAt = now;
      entry.heard = true;
      entry.warned = false;
      entry.cpuTicks = undefined;
    }
  }

  forget(pid: number): void {
    this.watched.delete(pid);
  }

  /**
   * At `now`: a warning for each worker silent for half its bound, and a kill for each past it
   * (forgotten here, as the supervisor kills it), each once. Meant to run once a heartbeat interval.
   */
  check(now: number): Verdict[] {
    if (this.lastCheckAt !== undefined && now - this.lastCheckAt > LATE_CHECK_MS) {
      // This process was not running either: the workers' messages of that time are still
      // unread. Only the time this check is late is forgiven (every clock moves on by it), so
      // checks that are late again and again still judge, on the time the supervisor ran.
      const forgivenMs = now - this.lastCheckAt - HEARTBEAT_INTERVAL_MS;
      for (const entry of this.watched.values()) entry.heardAt = Math.min(now, entry.heardAt + forgivenMs);
    }
    this.lastCheckAt = now;
    if (this.timeoutMs === 0) return [];
    const verdicts: Verdict[] = [];
    for (const [pid, entry] of this.watched) {
      const silentMs = now - entry.heardAt;
      const bound = this.timeoutMs + (entry.heard ? 0 : STARTUP_GRACE_MS);
      if (silentMs <= bound - this.timeoutMs / 2) continue;
      // Sampled from half the bound on, so that CPU progress is measured by the time it counts.
      const sample = this.sample(pid);
      const progressed = sample !== undefined && entry.cpuTicks !== undefined && sample.cpuTicks > entry.cpuTicks;
      entry.cpuTicks = sample?.cpuTicks;
      const busy = sample !== undefined && (sample.state === 'R' || progressed);
      if (silentMs > bound + (busy ? (BUSY_BOUND_FACTOR - 1) * this.timeoutMs : 0)) {
        verdicts.push({ pid, silentMs, verdict: 'kill', state: sample?.state });
        this.watched.delete(pid);
      } else if (!entry.warned) {
        entry.warned = true;
        verdicts.push({ pid, silentMs, verdict: 'warn', state: sample?.state });
      }
    }
    return verdicts;
  }
}

export type LivenessWatch = { watch(pid: number): void; forget(pid: number): void; stop(): void };

/**
 * In the supervisor: hears every worker's messages, and once a heartbeat interval calls
 * `onSilent` for a watched worker silent for half its bound and `onUnresponsive` for one past
 * it (each once per silence).
 */
export function superviseLiveness(
  timeoutMs: number,
  onUnresponsive: (pid: number, silentMs: number, state: string | undefined) => void,
  onSilent: (pid: number, silentMs: number, state: string | undefined) => void = () => {},
): LivenessWatch {
  const monitor = new LivenessMonitor(timeoutMs);
  const onMessage = (worker: Worker) => {
    if (worker.process.pid) monitor.heard(worker.process.pid, Date.now());
  };
  cluster.on('message', onMessage);
  const timer = setInterval(() => {
    for (const { pid, silentMs, verdict, state } of monitor.check(Date.now())) {
      if (verdict === 'kill') onUnresponsive(pid, silentMs, state);
      else onSilent(pid, silentMs, state);
    }
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    watch: (pid) => monitor.watch(pid, Date.now()),
    forget: (pid) => monitor.forget(pid),
    stop() {
      clearInterval(timer);
      cluster.off('message', onMessage);
    },
  };
}
