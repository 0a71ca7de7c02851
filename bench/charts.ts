// Owns the report's charts: each one is a uPlot chart whose data travels in the page as JSON
// (time or category on x, a unit on y and in the legend, a legend entry per series), drawn by
// CHART_SCRIPT with uPlot inlined in the page (html.ts): a report stays one standalone file.
import { escapeHtml } from './html.ts';

/** How x reads: ms since the start (shown as ms / s), a plain number with a unit, or named groups. */
export type ChartAxis = { label: string; kind: 'ms' | 'number' | 'category'; unit?: string; categories?: string[]; range?: [number, number]; splits?: number[] };

export type ChartSeries = { label: string; color: string; kind?: 'line' | 'step' | 'bars' };

/** What chart-script.ts draws: data[0] is x, data[i] the values of series[i - 1] (null: none there). */
export type ChartSpec = { title: string; x: ChartAxis; y: { label: string; unit: string }; series: ChartSeries[]; data: (number | null)[][] };

const PALETTE = ['#2f6fdf', '#1f9d55', '#7a5af8', '#e8912d', '#c8322b', '#0e9aa7'];
const MAX_POINTS = 2_000;

/** A chart's markup: its title, the place uPlot draws in, and its data as JSON (`<` escaped: no tag can close the script). */
export function chartHtml(spec: ChartSpec): string {
  const json = JSON.stringify(spec).replace(/</g, '\\u003c');
  return `<figure class="chart"><figcaption>${escapeHtml(spec.title)}</figcaption><div class="plot"></div><script type="application/json" class="chart-data">${json}</script></figure>`;
}

export type TimelineRow = {
  /** ms from the start of the run. */
  start: number;
  end: number;
  status: number;
  /** When the email's data reached the SMTP server, and when the server accepted it (ms from the start). */
  emailData?: number;
  emailAccepted?: number;
};

/** How many of `sorted` are <= value. */
function countUpTo(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid]! <= value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The x positions of a cumulative chart: every event's time, or an even grid when there are too many. */
function eventTimes(times: readonly number[]): number[] {
  const unique = [...new Set([0, ...times.filter(Number.isFinite)])].sort((a, b) => a - b);
  if (unique.length <= MAX_POINTS) return unique;
  const span = unique.at(-1)!;
  return Array.from({ length: MAX_POINTS + 1 }, (_, i) => (span * i) / MAX_POINTS);
}

/**
 * The requests of a run over time, counted: sent, answered 2xx, answered otherwise (4xx, 5xx or
 * no answer), and their emails accepted by the SMTP server. The gap between two lines at a time
 * is how many were waiting there (answers in flight, emails not yet sent).
 */
export function timelineChart(options: { title: string; rows: readonly TimelineRow[] }): string {
  const sorted = (values: number[]) => values.sort((a, b) => a - b);
  const sent = sorted(options.rows.map((r) => r.start));
  const ok = sorted(options.rows.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.end));
  const other = sorted(options.rows.filter((r) => !(r.status >= 200 && r.status < 300)).map((r) => r.end));
  const emails = sorted(options.rows.flatMap((r) => (r.emailAccepted === undefined ? [] : [r.emailAccepted])));
  const xs = eventTimes([...sent, ...ok, ...other, ...emails]);
  const series: [ChartSeries, number[]][] = [
    [{ label: 'requests sent', color: '#8a94a6', kind: 'step' }, sent],
    [{ label: 'answered 2xx', color: '#2f6fdf', kind: 'step' }, ok],
    [{ label: 'answered 4xx / 5xx / no answer', color: '#c8322b', kind: 'step' }, other],
    [{ label: 'emails accepted by SMTP', color: '#1f9d55', kind: 'step' }, emails],
  ];
  const shown = series.filter(([s, values]) => values.length > 0 || s.label !== 'answered 4xx / 5xx / no answer');
  return chartHtml({
    title: options.title,
    x: { label: 'time since the first request', kind: 'ms' },
    y: { label: 'requests (cumulative)', unit: '' },
    series: shown.map(([s]) => s),
    data: [xs, ...shown.map(([, values]) => xs.map((x) => countUpTo(values, x)))],
  });
}

export type BarGroup = { label: string; bars: { label: string; value: number; color?: string }[] };

/**
 * Bars side by side, a group per model (e.g. last answer, last email): the same bar label is one
 * series across the groups, with its legend entry. Values in ms by default, or counts with `suffix`.
 */
export function comparisonChart(options: { title: string; groups: readonly BarGroup[]; unit?: 'ms' | 'count'; suffix?: string; yLabel?: string }): string {
  const labels: string[] = [];
  const colors = new Map<string, string>();
  for (const group of options.groups) {
    for (const bar of group.bars) {
      if (!labels.includes(bar.label)) labels.push(bar.label);
      if (bar.color && !colors.has(bar.label)) colors.set(bar.label, bar.color);
    }
  }
  // Group g's bar i sits at x = g * (k + 1) + i: one empty slot between groups.
  const k = Math.max(1, labels.length);
  const xs: number[] = [];
  for (let g = 0; g < options.groups.length; g++) for (let i = 0; i < k; i++) xs.push(g * (k + 1) + i);
  const data = labels.map((label, i) => xs.map((x) => {
    const g = Math.floor(x / (k + 1));
    if (x - g * (k + 1) !== i) return null;
    const value = options.groups[g]?.bars.find((b) => b.label === label)?.value;
    return value === undefined || !Number.isFinite(value) ? null : value;
  }));
  const unit = options.unit === 'count' ? (options.suffix ?? '').trim() : 'ms';
  return chartHtml({
    title: options.title,
    x: {
      label: '',
      kind: 'category',
      categories: options.groups.map((g) => g.label),
      splits: options.groups.map((_, g) => g * (k + 1) + (k - 1) / 2),
      range: [-0.75, Math.max(0, options.groups.length * (k + 1) - 2) + 0.75],
    },
    y: { label: options.yLabel ?? (options.unit === 'count' ? unit : 'time'), unit },
    series: labels.map((label, i) => ({ label, color: colors.get(label) ?? PALETTE[i % PALETTE.length]!, kind: 'bars' })),
    data: [xs, ...data],
  });
}

/** Vertical bars at x (a histogram's bins, or a series per interval). */
export function barChart(options: { title: string; x: readonly number[]; values: readonly number[]; xAxis: ChartAxis; yLabel: string; yUnit: string; label: string; color?: string }): string {
  return chartHtml({
    title: options.title,
    x: options.xAxis,
    y: { label: options.yLabel, unit: options.yUnit },
    series: [{ label: options.label, color: options.color ?? PALETTE[0]!, kind: 'bars' }],
    data: [[...options.x], [...options.values]],
  });
}

export type LineSeries = { label: string; color?: string; points: readonly { x: number; y: number }[] };

/** Lines over the time since the start (x in ms), one per series, on one x axis (a series has null where it has no point). */
export function lineChart(options: { title: string; series: readonly LineSeries[]; yLabel: string; yUnit: string; xLabel: string }): string {
  // At most MAX_POINTS per line: every k-th point, the last always kept.
  const series = options.series.map((s) => {
    const finite = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    const every = Math.max(1, Math.ceil(finite.length / MAX_POINTS));
    return { ...s, points: finite.filter((_, i) => i % every === 0 || i === finite.length - 1) };
  });
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const data = series.map((s) => {
    const byX = new Map(s.points.map((p) => [p.x, p.y]));
    return xs.map((x) => byX.get(x) ?? null);
  });
  return chartHtml({
    title: options.title,
    x: { label: options.xLabel, kind: 'ms' },
    y: { label: options.yLabel, unit: options.yUnit },
    series: series.map((s, i) => ({ label: s.label, color: s.color ?? PALETTE[i % PALETTE.length]!, kind: 'line' })),
    data: [xs, ...data],
  });
}
