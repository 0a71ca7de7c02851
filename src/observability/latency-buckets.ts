// Fixed latency buckets (milliseconds), so per-second summaries from many workers can be added
// up and percentiles read from the sum without shipping every sample between processes.
export const BUCKET_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, Infinity];

export type SecondSummary = { second: number; count: number; errors: number; buckets: number[] };

export function emptySummary(second: number): SecondSummary {
  return { second, count: 0, errors: 0, buckets: BUCKET_BOUNDS_MS.map(() => 0) };
}

export function addSample(summary: SecondSummary, durationMs: number, failed: boolean): void {
  summary.count += 1;
  if (failed) summary.errors += 1;
  const index = BUCKET_BOUNDS_MS.findIndex((bound) => durationMs <= bound);
  summary.buckets[index] = (summary.buckets[index] ?? 0) + 1;
}

export function mergeInto(target: SecondSummary, source: SecondSummary): void {
  target.count += source.count;
  target.errors += source.errors;
  source.buckets.forEach((n, i) => {
    target.buckets[i] = (target.buckets[i] ?? 0) + n;
  });
}

/** The upper bound of the bucket holding the q-th quantile (a conservative estimate). */
export function quantileMs(buckets: number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] ?? 0;
    if (seen >= rank) {
      const bound = BUCKET_BOUNDS_MS[i]!;
      return Number.isFinite(bound) ? bound : BUCKET_BOUNDS_MS[BUCKET_BOUNDS_MS.length - 2]!;
    }
  }
  return null;
}
