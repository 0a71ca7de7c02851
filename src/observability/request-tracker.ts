// What one HTTP worker is doing right now: every request in flight with its phase (reading the
// body, validating, waiting for the database, sending the answer), plus per-second counts and
// latency buckets of the requests it finished. Feeds the metrics and the dashboard.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { addSample, emptySummary, type SecondSummary } from './latency-buckets.ts';
import type { Metrics } from './metrics.ts';

export type Phase = 'receiving' | 'validating' | 'waiting for the database' | 'sending the answer';

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

/** How often the in-flight gauges are brought up to date (not on every request: a hot path). */
const GAUGE_INTERVAL_MS = 250;

export class RequestTracker {
  private readonly inFlight = new Map<FastifyRequest, InFlight>();
  /** Requests in flight in the database phase, counted as they move (read on every request). */
  private waitingForDatabase = 0;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private current: SecondSummary = emptySummary(Math.floor(Date.now() / 1000));
  private finished: SecondSummary[] = [];
  private readonly metrics: Metrics | undefined;
  private readonly poolSize: number;

  constructor(options: { metrics?: Metrics; poolSize: number }) {
    this.metrics = options.metrics;
    this.poolSize = options.poolSize;
    this.metrics?.dbPoolSize.set({ worker: this.metrics.worker }, options.poolSize);
    if (this.metrics) {
      this.gaugeTimer = setInterval(() => this.updateGauges(), GAUGE_INTERVAL_MS);
      this.gaugeTimer.unref();
    }
  }

  setPhase(request: FastifyRequest, phase: Phase, label?: string): void {
    const entry = this.inFlight.get(request);
    if (!entry) return;
    this.move(entry, phase);
    if (label !== undefined) entry.label = label;
  }

  private move(entry: InFlight, phase: Phase | undefined): void {
    if (entry.phase === 'waiting for the database') this.waitingForDatabase -= 1;
    if (phase === 'waiting for the database') this.waitingForDatabase += 1;
    if (phase !== undefined) entry.phase = phase;
  }

  /** Requests in the database phase beyond the pool's connections: the pool's queue. */
  databaseBacklog(): number {
    return Math.max(0, this.waitingForDatabase - this.poolSize);
  }

  stop(): void {
    clearInterval(this.gaugeTimer);
  }

  countShed(): void {
    this.metrics?.shed.inc();
  }

  /** A long-lived stream (server-sent events) is not a request in flight: stop following it. */
  forget(request: FastifyRequest): void {
    const entry = this.inFlight.get(request);
    if (!entry) return;
    this.move(entry, undefined);
    this.inFlight.delete(request);
  }

  /** Fastify hooks that follow each request through its phases (callback style: no promise each). */
  attach(app: FastifyInstance): void {
    app.addHook('onRequest', (request, _reply, done) => {
      this.inFlight.set(request, { route: request.routeOptions.url ?? 'unknown', phase: 'receiving', startedAt: performance.now(), label: undefined });
      done();
    });
    app.addHook('preValidation', (request, _reply, done) => {
      const name = (request.body as { name?: unknown } | undefined)?.name;
      this.setPhase(request, 'validating', typeof name === 'string' ? name.slice(0, 40) : undefined);
      done();
    });
    app.addHook('preHandler', (request, _reply, done) => {
      this.setPhase(request, 'waiting for the database');
      done();
    });
    app.addHook('onSend', (request, _reply, payload, done) => {
      this.setPhase(request, 'sending the answer');
      done(null, payload);
    });
    app.addHook('onResponse', (request, reply, done) => {
      this.finish(request, reply.statusCode);
      done();
    });
    app.addHook('onRequestAbort', (request, done) => {
      this.finish(request, 499);
      done();
    });
    app.addHook('onClose', (_instance, done) => {
      this.stop();
      done();
    });
  }

  private finish(request: FastifyRequest, status: number): void {
    const entry = this.inFlight.get(request);
    if (!entry) return;
    this.move(entry, undefined);
    this.inFlight.delete(request);
    const durationMs = performance.now() - entry.startedAt;
    this.rollSecond();
    addSample(this.current, durationMs, status >= 500);
    if (this.metrics) {
      const labels = { method: request.method, route: entry.route, status: String(status) };
      this.metrics.httpRequests.inc(labels);
      this.metrics.httpDuration.observe(labels, durationMs / 1000);
    }
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
    const waitingForDb = this.waitingForDatabase;
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
