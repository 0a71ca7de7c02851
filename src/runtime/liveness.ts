// Worker liveness. Each worker process tells the supervisor it is alive once a second, from its
// event loop, so a loop that stopped turning (an endless loop, a stuck native call, SIGSTOP)
// stops the messages too. The supervisor's monitor names the workers it has not heard from for
// WORKER_LIVENESS_TIMEOUT_MS; the supervisor kills them (SIGKILL, which a stopped process
// receives as well) and replaces them like any worker that died.

import cluster, { type Worker } from 'node:cluster';

export const HEARTBEAT_INTERVAL_MS = 1_000;
/** Before its first message a worker is still loading its code and connecting: this much longer. */
export const STARTUP_GRACE_MS = 30_000;
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

type Watched = { heardAt: number; heard: boolean };

/**
 * In the supervisor: when each worker was last heard from. Any message counts (the dashboard's
 * state messages too). Pure bookkeeping on a clock passed in, so it is tested without processes.
 */
export class LivenessMonitor {
  private readonly watched = new Map<number, Watched>();
  private readonly timeoutMs: number;
  private lastCheckAt: number | undefined;

  /** timeoutMs 0: never judge (WORKER_LIVENESS_TIMEOUT_MS=0, e.g. to pause a worker in a debugger). */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  watch(pid: number, now: number): void {
    this.watched.set(pid, { heardAt: now, heard: false });
  }

  heard(pid: number, now: number): void {
    const entry = this.watched.get(pid);
    if (entry) {
      entry.heardAt = now;
      entry.heard = true;
    }
  }

  forget(pid: number): void {
    this.watched.delete(pid);
  }

  /**
   * The workers silent past the bound at `now`, with how long; each is named once (forgotten
   * here, as the supervisor kills it). Meant to run once a heartbeat interval.
   */
  check(now: number): Array<{ pid: number; silentMs: number }> {
    const late = this.lastCheckAt !== undefined && now - this.lastCheckAt > LATE_CHECK_MS;
    this.lastCheckAt = now;
    if (late) {
      // This process was not running either: its clock jumped, and the workers' messages of
      // that time are still unread. Nobody is judged on that gap; every clock starts over.
      for (const entry of this.watched.values()) entry.heardAt = now;
      return [];
    }
    if (this.timeoutMs === 0) return [];
    const overdue: Array<{ pid: number; silentMs: number }> = [];
    for (const [pid, entry] of this.watched) {
      const silentMs = now - entry.heardAt;
      if (silentMs > this.timeoutMs + (entry.heard ? 0 : STARTUP_GRACE_MS)) {
        overdue.push({ pid, silentMs });
        this.watched.delete(pid);
      }
    }
    return overdue;
  }
}

export type LivenessWatch = { watch(pid: number): void; forget(pid: number): void; stop(): void };

/**
 * In the supervisor: hears every worker's messages, and once a heartbeat interval calls
 * `onUnresponsive` for each watched worker silent past the bound (once per worker).
 */
export function superviseLiveness(timeoutMs: number, onUnresponsive: (pid: number, silentMs: number) => void): LivenessWatch {
  const monitor = new LivenessMonitor(timeoutMs);
  const onMessage = (worker: Worker) => {
    if (worker.process.pid) monitor.heard(worker.process.pid, Date.now());
  };
  cluster.on('message', onMessage);
  const timer = setInterval(() => {
    for (const { pid, silentMs } of monitor.check(Date.now())) onUnresponsive(pid, silentMs);
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
