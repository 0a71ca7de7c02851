// The live picture of the cluster for the dashboard: one lane per worker process (what it is
// doing now), requests per second and latency percentiles over the last minute, and the worker
// restarts as they happen. The supervisor holds the hub and broadcasts its view every second;
// each HTTP worker keeps the latest view for the dashboard's event stream.
import cluster from 'node:cluster';
import { emptySummary, mergeInto, quantileMs, type SecondSummary } from './latency-buckets.ts';
import type { WorkerActivity } from './request-tracker.ts';

const HISTORY_SECONDS = 60;
const MAX_RESTARTS = 20;
/** A lane not heard from for this long is shown as silent (its process may be stuck). */
const SILENT_AFTER_MS = 3_000;

/** reason: set when the supervisor killed the worker itself, e.g. "unresponsive for 10 s: killed". */
export type RestartEvent = { at: string; role: string; pid: number; code: number | null; signal: string | null; reason?: string };
export type WorkerLane = WorkerActivity & { startedAt: string; silent: boolean };
export type SecondPoint = { second: number; requests: number; errors: number; p50: number | null; p90: number | null; p99: number | null };
export type ClusterView = { generatedAt: string; workers: WorkerLane[]; history: SecondPoint[]; restarts: RestartEvent[] };

type StateMessage = { type: 'worker-state'; activity: WorkerActivity } | { type: 'cluster-state'; view: ClusterView };

export class ClusterStateHub {
  private readonly lanes = new Map<number, { activity: WorkerActivity; startedAt: number; updatedAt: number }>();
  private readonly history = new Map<number, SecondSummary>();
  private readonly restarts: RestartEvent[] = [];
  /** Processes that exited: a last state message can arrive after the exit, and must not bring their lane back. */
  private readonly exited = new Set<number>();

  recordStart(pid: number, role: WorkerActivity['role']): void {
    this.lanes.set(pid, { activity: { pid, role, inFlight: 0, byPhase: {}, sample: [], seconds: [] }, startedAt: Date.now(), updatedAt: Date.now() });
  }

  recordExit(pid: number, role: string, code: number | null, signal: string | null, reason?: string): void {
    this.lanes.delete(pid);
    this.exited.add(pid);
    if (this.exited.size > 1_000) this.exited.delete(this.exited.values().next().value!);
    this.restarts.unshift({ at: new Date().toISOString(), role, pid, code, signal, ...(reason ? { reason } : {}) });
    this.restarts.length = Math.min(this.restarts.length, MAX_RESTARTS);
  }

  update(activity: WorkerActivity): void {
    // Its last seconds of requests still count in the history; a lane is only for the living.
    if (!this.exited.has(activity.pid)) {
      const lane = this.lanes.get(activity.pid);
      this.lanes.set(activity.pid, { activity, startedAt: lane?.startedAt ?? Date.now(), updatedAt: Date.now() });
    }
    for (const summary of activity.seconds) {
      const slot = this.history.get(summary.second) ?? emptySummary(summary.second);
      mergeInto(slot, summary);
      this.history.set(summary.second, slot);
    }
    const oldest = Math.floor(Date.now() / 1000) - HISTORY_SECONDS;
    for (const second of this.history.keys()) if (second < oldest) this.history.delete(second);
  }

  view(): ClusterView {
    const now = Math.floor(Date.now() / 1000);
    const history: SecondPoint[] = [];
    for (let second = now - HISTORY_SECONDS; second < now; second++) {
      const summary = this.history.get(second) ?? emptySummary(second);
      history.push({ second, requests: summary.count, errors: summary.errors, p50: quantileMs(summary.buckets, 0.5), p90: quantileMs(summary.buckets, 0.9), p99: quantileMs(summary.buckets, 0.99) });
    }
    const workers = [...this.lanes.values()]
      .sort((a, b) => (a.activity.role === b.activity.role ? a.startedAt - b.startedAt : a.activity.role === 'http' ? -1 : 1))
      .map(({ activity, startedAt, updatedAt }) => ({ ...activity, seconds: [], startedAt: new Date(startedAt).toISOString(), silent: Date.now() - updatedAt > SILENT_AFTER_MS }));
    return { generatedAt: new Date().toISOString(), workers, history, restarts: [...this.restarts] };
  }
}

/** In the supervisor: collect workers' activity and send everyone the view every second. */
export function runClusterStateHub(hub: ClusterStateHub): () => void {
  const onMessage = (_worker: unknown, message: StateMessage) => {
    if (message?.type === 'worker-state') hub.update(message.activity);
  };
  cluster.on('message', onMessage);
  const timer = setInterval(() => {
    const message: StateMessage = { type: 'cluster-state', view: hub.view() };
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) worker.send(message);
    }
  }, 1_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    cluster.off('message', onMessage);
  };
}

export type ClusterViewSource = { view(): ClusterView; stop(): void };

/**
 * In a worker: publish this process's activity twice a second and keep the latest view from the
 * supervisor. Outside a cluster (tests, a single process) the same is done with a local hub.
 */
export function publishActivity(snapshot: () => WorkerActivity): ClusterViewSource {
  const inCluster = cluster.isWorker && typeof process.send === 'function';
  const localHub = inCluster ? undefined : new ClusterStateHub();
  localHub?.recordStart(process.pid, 'http');
  let latest: ClusterView | undefined;
  const onMessage = (message: StateMessage) => {
    if (message?.type === 'cluster-state') latest = message.view;
  };
  if (inCluster) process.on('message', onMessage);
  const timer = setInterval(() => {
    const activity = snapshot();
    if (localHub) localHub.update(activity);
    else if (process.connected) process.send!({ type: 'worker-state', activity } satisfies StateMessage);
  }, 500);
  timer.unref();
  return {
    view: () => localHub?.view() ?? latest ?? new ClusterStateHub().view(),
    stop() {
      clearInterval(timer);
      process.off('message', onMessage);
    },
  };
}
