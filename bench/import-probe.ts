// Owns what the `import` scenario watches while an import runs: a light open-loop probe of the HTTP
// workers (GET /courses/<id> and POST /register on a course of its own, at a fixed rate, whether
// or not the previous answers came), and a scrape of /metrics every second for the event-loop
// delay of each role.
import { Pool, request } from 'undici';
import { epochNow } from '../test/support/rush.ts';

export type ProbeRecord = { kind: 'GET /courses/{id}' | 'POST /register'; startedAt: number; endedAt: number; status: number; error?: string };

export type Probe = { stop(): Promise<{ records: ProbeRecord[]; skipped: number }> };

export type ProbeOptions = {
  baseUrl: string;
  /** Requests per second, both kinds alternating. */
  rate: number;
  /** Read by the GET. */
  readCourse: string;
  /** Registered into by the POST: a course with room for every probe. */
  registerCourse: string;
  /** Makes the probe's emails unique across probes of one service. */
  label: string;
  timeoutMs?: number;
};

/** More than this in flight: the tick is skipped (and counted), so a stalled service is not flooded. */
const MAX_IN_FLIGHT = 32;

export function startProbe(options: ProbeOptions): Probe {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pool = new Pool(options.baseUrl, { connections: 8, pipelining: 1, connectTimeout: 10_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const records: ProbeRecord[] = [];
  const pending = new Set<Promise<void>>();
  let skipped = 0;
  let tick = 0;
  const send = async (n: number) => {
    const kind: ProbeRecord['kind'] = n % 2 === 0 ? 'GET /courses/{id}' : 'POST /register';
    const record: ProbeRecord = { kind, startedAt: epochNow(), endedAt: 0, status: 0 };
    try {
      const answer = kind === 'GET /courses/{id}'
        ? await pool.request({ path: `/courses/${encodeURIComponent(options.readCourse)}`, method: 'GET' })
        : await pool.request({
          path: '/register',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `Probe ${n}`, email: `probe-${options.label}-${n}@probe.example.org`, course: options.registerCourse }),
        });
      await answer.body.text();
      record.status = answer.statusCode;
    } catch (error) {
      record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    record.endedAt = epochNow();
    records.push(record);
  };
  const intervalMs = 1000 / Math.max(0.001, options.rate);
  const start = epochNow();
  let timer: NodeJS.Timeout | undefined;
  // Fixed schedule (no drift): tick n is due at start + n * interval.
  const schedule = () => {
    timer = setTimeout(() => {
      const n = tick++;
      if (pending.size >= MAX_IN_FLIGHT) skipped += 1;
      else {
        const sent = send(n).finally(() => pending.delete(sent));
        pending.add(sent);
      }
      schedule();
    }, Math.max(0, start + tick * intervalMs - epochNow()));
  };
  if (options.rate > 0) schedule();
  return {
    async stop() {
      clearTimeout(timer);
      await Promise.all(pending);
      await pool.close().catch(() => undefined);
      return { records, skipped };
    },
  };
}

export type LoopDelaySample = { at: number; http: number; jobs: number };

export type MetricsScraper = { stop(): Promise<{ samples: LoopDelaySample[]; failures: number }> };

const LOOP_DELAY = /^registrar_event_loop_delay_p99_seconds\{([^}]*)\}\s+(\S+)/;

/** Max p99 event-loop delay per role (seconds) in one /metrics text; NaN for a role not seen. */
export function loopDelayByRole(text: string): { http: number; jobs: number } {
  const found = { http: Number.NaN, jobs: Number.NaN };
  for (const line of text.split('\n')) {
    const match = LOOP_DELAY.exec(line);
    if (!match) continue;
    const role = /(?:^|,)role="(http|jobs)"/.exec(match[1]!)?.[1] as 'http' | 'jobs' | undefined;
    const value = Number(match[2]);
    if (role && Number.isFinite(value) && !(value <= found[role])) found[role] = value;
  }
  return found;
}

/**
 * GET /metrics every `intervalMs`. The service's delay gauge is the p99 since the previous
 * scrape (its histogram is reset on each), so each sample covers the second before it; the
 * first scrape is not recorded.
 */
export function startMetricsScraper(baseUrl: string, intervalMs = 1_000): MetricsScraper {
  const samples: LoopDelaySample[] = [];
  let failures = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  let first = true;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        const answer = await request(`${baseUrl}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
        const text = await answer.body.text();
        // The first scrape covers everything since the previous one (the service's start, say): it only resets.
        if (answer.statusCode === 200 && !first) samples.push({ at: Date.now(), ...loopDelayByRole(text) });
        else if (answer.statusCode !== 200) failures += 1;
      } catch {
        failures += 1;
      }
      first = false;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.max(0, intervalMs - (Date.now() - started))).unref();
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      return { samples, failures };
    },
  };
}
