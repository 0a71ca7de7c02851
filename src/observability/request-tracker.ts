// What one HTTP worker is doing right now: every request in flight with its phase (reading the
// body, validating, waiting for the database, waiting for email, sending), plus per-second
// counts and latency buckets of the requests it finished. Feeds the metrics and the dashboard.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { addSample, emptySummary, type SecondSummary } from './latency-buckets.ts';
import type { Metrics } from './metrics.ts';

export type Phase = 'receiving' | 'validating' | 'waiting for the database' | 'waiting for email' | 'sending';

type InFlight = { route: string; phase: Phase; startedAt: number; label: string | undefined };

export type WorkerActivity = {
  pid: number;
  role: 'http' | 'jobs';
  inFlight: number;
  byPhase: Record<string, number>;
  /** The oldest requests in flight (at most 12): what the lane on the dashboard shows. */
  sample: { label: string; route: string; phase: string; ageMs: number }[];
  /** Seconds completed since the previous snapshot. */
  seconds: SecondSummary[];
};

const SAMPLE_SIZE = 12;

export class RequestTracker {
  private readonly inFlight = new Map<FastifyRequest, InFlight>();
  private current: SecondSummary = emptySummary(Math.floor(Date.now() / 1000));
  private finished: SecondSummary[] = [];
  private readonly metrics: Metrics | undefined;
  private readonly poolSize: number;

  constructor(options: { metrics?: Metrics; poolSize: number }) {
    this.metrics = options.metrics;
    this.poolSize = options.poolSize;
    this.metrics?.dbPoolSize.set({ worker: this.metrics.worker }, options.poolSize);
  }

  setPhase(request: FastifyRequest, phase: Phase, label?: string): void {
    const entry = this.inFlight.get(request);
    if (!entry) return;
    entry.phase = phase;
    if (label !== undefined) entry.label = label;
    this.updateGauges();
  }

  /** Requests in the database phase beyond the pool's connections: the pool's queue. */
  databaseBacklog(): number {
    let waiting = 0;
    for (const entry of this.inFlight.values()) if (entry.phase === 'waiting for the database') waiting += 1;
    return Math.max(0, waiting - this.poolSize);
  }

  countShed(): void {
    this.metrics?.shed.inc();
  }

  /** A long-lived stream (server-sent events) is not a request in flight: stop following it. */
  forget(request: FastifyRequest): void {
    if (this.inFlight.delete(request)) this.updateGauges();
  }

  /** Fastify hooks that follow each request through its phases. */
  attach(app: FastifyInstance): void {
    app.addHook('onRequest', async (request) => {
      this.inFlight.set(request, { route: request.routeOptions.url ?? 'unknown', phase: 'receiving', startedAt: performance.now(), label: undefined });
      this.updateGauges();
    });
    app.addHook('preValidation', async (request) => {
      const name = (request.body as { name?: unknown } | undefined)?.name;
      this.setPhase(request, 'validating', typeof name === 'string' ? name.slice(0, 40) : undefined);
    });
    app.addHook('preHandler', async (request) => this.setPhase(request, 'waiting for the database'));
    app.addHook('onSend', async (request) => this.setPhase(request, 'sending'));
    app.addHook('onResponse', async (request, reply) => this.finish(request, reply.statusCode));
    app.addHook('onRequestAbort', async (request) => this.finish(request, 499));
  }

  private finish(request: FastifyRequest, status: number): void {
    const entry = this.inFlight.get(request);
    if (!entry) return;
    this.inFlight.delete(request);
    const durationMs = performance.now() - entry.startedAt;
    this.rollSecond();
    addSample(this.current, durationMs, status >= 500);
    if (this.metrics) {
      const labels = { method: request.method, route: entry.route, status: String(status) };
      this.metrics.httpRequests.inc(labels);
      this.metrics.httpDuration.observe(labels, durationMs / 1000);
    }
    this.updateGauges();
  }

  private rollSecond(): void {
    const second = Math.floor(Date.now() / 1000);
    if (second === this.current.second) return;
    if (this.current.count > 0) this.finished.push(this.current);
    this.current = emptySummary(second);
  }

  private updateGauges(): void {
    if (!this.metrics) return;
    const worker = this.metrics.worker;
    let waitingForDb = 0;
    for (const entry of this.inFlight.values()) if (entry.phase === 'waiting for the database') waitingForDb += 1;
    this.metrics.httpInFlight.set({ worker }, this.inFlight.size);
    // postgres.js keeps no public pool statistics; requests in the database phase beyond the
    // pool size are the ones queued for a connection.
    this.metrics.dbInUse.set({ worker }, Math.min(waitingForDb, this.poolSize));
    this.metrics.dbWaiting.set({ worker }, Math.max(0, waitingForDb - this.poolSize));
  }

  snapshot(): WorkerActivity {
    this.rollSecond();
    const now = performance.now();
    const byPhase: Record<string, number> = {};
    const entries = [...this.inFlight.values()];
    for (const entry of entries) byPhase[entry.phase] = (byPhase[entry.phase] ?? 0) + 1;
    const sample = entries.slice(0, SAMPLE_SIZE).map((entry) => ({
      label: entry.label ?? entry.route,
      route: entry.route,
      phase: entry.phase,
      ageMs: Math.round(now - entry.startedAt),
    }));
    const seconds = this.finished;
    this.finished = [];
    return { pid: process.pid, role: 'http', inFlight: this.inFlight.size, byPhase, sample, seconds };
  }
}
