// Owns HTML text: escaping every value put into markup, tables, and the report page itself (one
// self-contained file: uPlot's script and CSS inlined from its package, the charts' data as
// JSON, chart-script.ts drawing them; nothing fetched when it is opened).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { CHART_SCRIPT } from './chart-script.ts';
import type { TextTable } from './text-table.ts';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** For text content and attribute values alike. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

export function htmlTable(table: TextTable): string {
  const head = table.headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = table.rows.map((row) => `<tr>${table.headers.map((_, i) => `<td>${escapeHtml(row[i] ?? '')}</td>`).join('')}</tr>`).join('\n');
  const caption = table.title ? `<caption>${escapeHtml(table.title)}</caption>` : '';
  return `<table>${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** A paragraph of plain text (escaped). */
export function paragraph(text: string, className?: string): string {
  return `<p${className ? ` class="${escapeHtml(className)}"` : ''}>${escapeHtml(text)}</p>`;
}

export type ReportSection = { heading: string; html: string };

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430; margin: 2rem auto; max-width: 1180px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d8dee8; padding-bottom: .2rem; }
.meta { color: #5a6578; margin-top: 0; }
table { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border: 1px solid #d8dee8; padding: .25rem .6rem; text-align: right; white-space: nowrap; } th { background: #f2f5f9; white-space: normal; }
td:first-child, th:first-child { text-align: left; white-space: normal; }
.ok { color: #1f7a3a; font-weight: 600; } .fail { color: #b42318; font-weight: 600; }
.note { color: #5a6578; }
figure.chart { margin: .6rem 0 1.6rem; }
figure.chart figcaption { font-weight: 600; margin-bottom: .3rem; }
figure.chart .u-legend { font-size: 12px; }
`;

const requireFromHere = createRequire(import.meta.url);

/** uPlot's script and stylesheet, from its package, to inline (a script may not hold "</script"). */
async function uplotSources(): Promise<{ js: string; css: string }> {
  const [js, css] = await Promise.all([
    readFile(requireFromHere.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    readFile(requireFromHere.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  ]);
  return { js: js.replace(/<\/script/gi, '<\\/script'), css };
}

export async function renderPage(options: { title: string; meta: string[]; sections: ReportSection[] }): Promise<string> {
  const uplot = await uplotSources();
  const sections = options.sections.map((s) => `<section>\n<h2>${escapeHtml(s.heading)}</h2>\n${s.html}\n</section>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title>
<style>${uplot.css}</style>
<style>${STYLE}</style>
<script>${uplot.js}</script>
</head>
<body>
<h1>${escapeHtml(options.title)}</h1>
${options.meta.map((line) => `<p class="meta">${escapeHtml(line)}</p>`).join('\n')}
${sections}
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}
