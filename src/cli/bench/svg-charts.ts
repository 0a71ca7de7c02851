// Owns the report's charts as inline SVG strings (request timeline, bar comparison, histogram,
// per-interval series); every label escaped, sizes bounded whatever the data.
import { escapeHtml } from './html.ts';
import { niceStep } from './stats.ts';

const COLORS = { ok: '#2f6fdf', client: '#e8912d', error: '#c8322b', email: '#1f9d55', emailWait: '#9bd3ae', grid: '#e3e8ef', axis: '#8a94a6' };


function msLabel(ms: number): string {
  if (ms === 0) return '0';
  if (Math.abs(ms) >= 1000) return `${+(ms / 1000).toFixed(2)} s`;
  return `${+ms.toFixed(2)} ms`;
}

function fmt(n: number): string {
  return Number.isFinite(n) ? n.toFixed(1) : '0';
}

function svgOpen(width: number, height: number, label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(label)}">`;
}

/** Vertical grid lines and labels of a time axis from 0 to `span` ms, drawn across the plot. */
function timeAxis(x0: number, width: number, y0: number, y1: number, span: number, unit: 'ms' | 'count' = 'ms'): string {
  const step = niceStep(span, 8);
  const parts: string[] = [];
  for (let value = 0, i = 0; value <= span + step * 1e-9 && i < 50; value += step, i++) {
    const x = x0 + (value / span) * width;
    parts.push(`<line x1="${fmt(x)}" y1="${y0}" x2="${fmt(x)}" y2="${y1}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${fmt(x)}" y="${y1 + 14}" text-anchor="middle">${escapeHtml(unit === 'ms' ? msLabel(value) : String(+value.toFixed(2)))}</text>`);
  }
  return parts.join('');
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

function statusColor(status: number): string {
  if (status >= 200 && status < 300) return COLORS.ok;
  if (status >= 400 && status < 500) return COLORS.client;
  return COLORS.error;
}

/**
 * One row per request, in the order sent: a bar from sent to answered, a green tick when its
 * email was accepted by the SMTP server (a pale line from when its data arrived there).
 */
export function timelineChart(options: { title: string; rows: readonly TimelineRow[]; span?: number; width?: number }): string {
  const rows = options.rows;
  const width = options.width ?? 1100;
  const left = 56;
  const right = 16;
  const top = 28;
  const rowHeight = Math.max(1, Math.min(14, Math.floor(520 / Math.max(1, rows.length))));
  const plotHeight = rowHeight * rows.length;
  const height = top + plotHeight + 44;
  const plotWidth = width - left - right;
  const span = Math.max(1, options.span ?? Math.max(1, ...rows.map((r) => Math.max(r.end, r.emailAccepted ?? 0))));
  const x = (ms: number) => left + (Math.max(0, Math.min(ms, span)) / span) * plotWidth;
  const parts = [svgOpen(width, height, options.title)];
  parts.push(`<text x="${left}" y="16" font-weight="600">${escapeHtml(options.title)}</text>`);
  parts.push(timeAxis(left, plotWidth, top, top + plotHeight, span));
  const labelEvery = niceStep(rows.length, 10);
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    const barHeight = Math.max(1, rowHeight - (rowHeight > 3 ? 1 : 0));
    if (i % labelEvery === 0) parts.push(`<text x="${left - 6}" y="${fmt(y + barHeight)}" text-anchor="end">${i + 1}</text>`);
    parts.push(`<rect x="${fmt(x(row.start))}" y="${y}" width="${fmt(Math.max(1, x(row.end) - x(row.start)))}" height="${barHeight}" fill="${statusColor(row.status)}"/>`);
    if (row.emailAccepted !== undefined) {
      const mid = y + barHeight / 2;
      if (row.emailData !== undefined) parts.push(`<line x1="${fmt(x(row.emailData))}" y1="${fmt(mid)}" x2="${fmt(x(row.emailAccepted))}" y2="${fmt(mid)}" stroke="${COLORS.emailWait}" stroke-width="${Math.max(1, barHeight / 2)}"/>`);
      parts.push(`<rect x="${fmt(x(row.emailAccepted) - 1)}" y="${y}" width="2.5" height="${barHeight}" fill="${COLORS.email}"/>`);
    }
  });
  parts.push(`<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="${COLORS.axis}"/>`);
  const legendY = height - 8;
  parts.push(
    `<rect x="${left}" y="${legendY - 8}" width="14" height="8" fill="${COLORS.ok}"/><text x="${left + 18}" y="${legendY}">request: sent to answered (2xx)</text>`,
    `<rect x="${left + 210}" y="${legendY - 8}" width="14" height="8" fill="${COLORS.emailWait}"/><text x="${left + 228}" y="${legendY}">email at the SMTP server (its delay)</text>`,
    `<rect x="${left + 460}" y="${legendY - 8}" width="3" height="8" fill="${COLORS.email}"/><text x="${left + 468}" y="${legendY}">email accepted</text>`,
    `<rect x="${left + 580}" y="${legendY - 8}" width="14" height="8" fill="${COLORS.client}"/><text x="${left + 598}" y="${legendY}">4xx</text>`,
    `<rect x="${left + 640}" y="${legendY - 8}" width="14" height="8" fill="${COLORS.error}"/><text x="${left + 658}" y="${legendY}">5xx / no answer</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n');
}

export type BarGroup = { label: string; bars: { label: string; value: number; color?: string }[] };

/**
 * Horizontal bars on one shared axis, a group per model (e.g. last answer, last email): a time
 * axis by default, or plain numbers (`unit: 'count'`, each bar labelled with its value and `suffix`).
 */
export function comparisonChart(options: { title: string; groups: readonly BarGroup[]; width?: number; unit?: 'ms' | 'count'; suffix?: string }): string {
  const unit = options.unit ?? 'ms';
  const valueLabel = (value: number) => (unit === 'ms' ? msLabel(value) : `${+value.toFixed(value >= 100 ? 0 : 2)}${options.suffix ?? ''}`);
  const width = options.width ?? 1100;
  const left = 170;
  const right = 90;
  const top = 28;
  const barHeight = 14;
  const palette = ['#2f6fdf', COLORS.email, '#7a5af8', '#e8912d'];
  const rowCount = options.groups.reduce((n, g) => n + g.bars.length, 0);
  const plotHeight = rowCount * (barHeight + 4) + options.groups.length * 30;
  const height = top + plotHeight + 30;
  const plotWidth = width - left - right;
  const span = Math.max(1, ...options.groups.flatMap((g) => g.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0))));
  const parts = [svgOpen(width, height, options.title), `<text x="8" y="16" font-weight="600">${escapeHtml(options.title)}</text>`];
  parts.push(timeAxis(left, plotWidth, top, top + plotHeight, span, unit));
  let y = top + 4;
  for (const group of options.groups) {
    parts.push(`<text x="8" y="${y + barHeight - 3}" font-weight="600">${escapeHtml(group.label)}</text>`);
    y += barHeight + 6;
    group.bars.forEach((bar, i) => {
      const value = Number.isFinite(bar.value) ? bar.value : 0;
      const w = Math.max(1, (value / span) * plotWidth);
      parts.push(`<text x="${left - 6}" y="${y + barHeight - 3}" text-anchor="end">${escapeHtml(bar.label)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${fmt(w)}" height="${barHeight}" fill="${bar.color ?? palette[i % palette.length]}"/>`);
      parts.push(`<text x="${fmt(left + w + 4)}" y="${y + barHeight - 3}">${escapeHtml(valueLabel(value))}</text>`);
      y += barHeight + 4;
    });
    y += 10;
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Vertical bars over consecutive ranges (a histogram or a per-interval series). */
export function columnChart(options: {
  title: string;
  columns: readonly { label: string; value: number }[];
  yLabel: string;
  xLabel: string;
  width?: number;
  color?: string;
}): string {
  const width = options.width ?? 1100;
  const left = 64;
  const right = 16;
  const top = 30;
  const plotHeight = 260;
  const height = top + plotHeight + 56;
  const plotWidth = width - left - right;
  const columns = options.columns.slice(0, 2000);
  const max = Math.max(1, ...columns.map((c) => c.value));
  const yStep = niceStep(max, 5);
  const yMax = Math.ceil(max / yStep) * yStep;
  const slot = plotWidth / Math.max(1, columns.length);
  const parts = [svgOpen(width, height, options.title), `<text x="${left}" y="16" font-weight="600">${escapeHtml(options.title)}</text>`];
  for (let value = 0, i = 0; value <= yMax + yStep * 1e-9 && i < 20; value += yStep, i++) {
    const y = top + plotHeight - (value / yMax) * plotHeight;
    parts.push(`<line x1="${left}" y1="${fmt(y)}" x2="${left + plotWidth}" y2="${fmt(y)}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${left - 6}" y="${fmt(y + 4)}" text-anchor="end">${escapeHtml(String(+value.toFixed(2)))}</text>`);
  }
  const labelEvery = Math.max(1, Math.ceil(columns.length / 12));
  columns.forEach((column, i) => {
    const h = (column.value / yMax) * plotHeight;
    const x = left + i * slot;
    parts.push(`<rect x="${fmt(x + (slot > 3 ? 0.5 : 0))}" y="${fmt(top + plotHeight - h)}" width="${fmt(Math.max(0.5, slot - (slot > 3 ? 1 : 0)))}" height="${fmt(h)}" fill="${options.color ?? COLORS.ok}"><title>${escapeHtml(`${column.label}: ${column.value}`)}</title></rect>`);
    if (i % labelEvery === 0) parts.push(`<text x="${fmt(x + slot / 2)}" y="${top + plotHeight + 14}" text-anchor="middle">${escapeHtml(column.label)}</text>`);
  });
  parts.push(`<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="${COLORS.axis}"/>`);
  parts.push(`<text x="${left + plotWidth / 2}" y="${height - 12}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>`);
  parts.push(`<text x="14" y="${top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotHeight / 2})">${escapeHtml(options.yLabel)}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

export type LineSeries = { label: string; color?: string; points: readonly { x: number; y: number }[] };

/** Lines over a time axis (x in ms from the start), one per series, with a legend. */
export function lineChart(options: { title: string; series: readonly LineSeries[]; yLabel: string; xLabel: string; width?: number; span?: number }): string {
  const width = options.width ?? 1100;
  const left = 64;
  const right = 16;
  const top = 30;
  const plotHeight = 240;
  const height = top + plotHeight + 64;
  const plotWidth = width - left - right;
  const palette = ['#2f6fdf', COLORS.email, '#7a5af8', '#e8912d', COLORS.error];
  // At most ~2000 points per line: every k-th point, the last always kept.
  const series = options.series.map((s) => {
    const every = Math.max(1, Math.ceil(s.points.length / 2000));
    return { ...s, points: s.points.filter((p, i) => (i % every === 0 || i === s.points.length - 1) && Number.isFinite(p.x) && Number.isFinite(p.y)) };
  });
  const all = series.flatMap((s) => s.points);
  const span = Math.max(1, options.span ?? Math.max(1, ...all.map((p) => p.x)));
  const max = Math.max(1e-9, ...all.map((p) => p.y));
  const yStep = niceStep(max, 5);
  const yMax = Math.ceil(max / yStep) * yStep;
  const x = (ms: number) => left + (Math.max(0, Math.min(ms, span)) / span) * plotWidth;
  const y = (value: number) => top + plotHeight - (Math.max(0, value) / yMax) * plotHeight;
  const parts = [svgOpen(width, height, options.title), `<text x="${left}" y="16" font-weight="600">${escapeHtml(options.title)}</text>`];
  for (let value = 0, i = 0; value <= yMax + yStep * 1e-9 && i < 20; value += yStep, i++) {
    parts.push(`<line x1="${left}" y1="${fmt(y(value))}" x2="${left + plotWidth}" y2="${fmt(y(value))}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${left - 6}" y="${fmt(y(value) + 4)}" text-anchor="end">${escapeHtml(String(+value.toFixed(2)))}</text>`);
  }
  parts.push(timeAxis(left, plotWidth, top, top + plotHeight, span));
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const path = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${fmt(x(p.x))},${fmt(y(p.y))}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color ?? palette[i % palette.length]}" stroke-width="1.6"/>`);
  });
  parts.push(`<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="${COLORS.axis}"/>`);
  parts.push(`<text x="${left + plotWidth / 2}" y="${top + plotHeight + 32}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>`);
  parts.push(`<text x="14" y="${top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotHeight / 2})">${escapeHtml(options.yLabel)}</text>`);
  let legendX = left;
  series.forEach((s, i) => {
    parts.push(`<rect x="${legendX}" y="${height - 14}" width="14" height="4" fill="${s.color ?? palette[i % palette.length]}"/><text x="${legendX + 18}" y="${height - 8}">${escapeHtml(s.label)}</text>`);
    legendX += 28 + s.label.length * 6.5;
  });
  parts.push('</svg>');
  return parts.join('\n');
}
