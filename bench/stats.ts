// Owns the arithmetic of the reports: percentiles (nearest rank), latency summaries, histograms
// and per-interval counts. Pure functions over plain numbers.

export type LatencySummary = { count: number; min: number; p50: number; p90: number; p99: number; max: number; mean: number };

/** Nearest-rank percentile of values sorted ascending; NaN for no values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : total / sorted.length,
  };
}

/** 1, 2 or 5 times a power of ten, so that `span` needs about `count` steps. */
export function niceStep(span: number, count: number): number {
  const raw = Math.max(span, 1e-9) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw * (1 - 1e-9)) ?? 10 * power;
}

export type Bin = { from: number; to: number; count: number };

/**
 * About `binCount` bins of a round width covering 0 to `upTo`, and one last bin for everything
 * above (to: Infinity) when any value lies above.
 */
export function histogram(values: readonly number[], binCount: number, upTo: number): Bin[] {
  const width = niceStep(upTo > 0 ? upTo : 1, Math.max(1, Math.min(binCount, 1000)));
  const count = Math.max(1, Math.min(2000, Math.ceil((upTo > 0 ? upTo : 1) / width)));
  const top = count * width;
  const bins: Bin[] = Array.from({ length: count }, (_, i) => ({ from: i * width, to: (i + 1) * width, count: 0 }));
  const overflow: Bin = { from: top, to: Number.POSITIVE_INFINITY, count: 0 };
  for (const value of values) {
    if (value >= top) overflow.count += 1;
    else bins[Math.max(0, Math.floor(value / width))]!.count += 1;
  }
  return overflow.count > 0 ? [...bins, overflow] : bins;
}

/** How many of `times` (ms) fall in each `intervalMs` interval from `start` to `end`. */
export function countPerInterval(times: readonly number[], start: number, end: number, intervalMs: number): number[] {
  const intervals = Math.max(1, Math.min(100_000, Math.ceil((end - start) / intervalMs)));
  const counts = new Array<number>(intervals).fill(0);
  for (const time of times) {
    const index = Math.floor((time - start) / intervalMs);
    if (index >= 0) counts[Math.min(intervals - 1, index)]! += 1;
  }
  return counts;
}

export function countBy<T>(items: readonly T[], key: (item: T) => string | number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = String(key(item));
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** Milliseconds as the reports print them: "0.84 ms", "647 ms", "8.69 s". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms === 0) return '0 ms';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** The largest value (NaN for none), without spreading a large array into arguments. */
export function maxOf(values: Iterable<number>): number {
  let max = Number.NaN;
  for (const value of values) if (!(value <= max)) max = value;
  return max;
}
