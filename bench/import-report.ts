// Owns the presentation of an `import` run: tables for stdout (throughput and speed-up, CPU and memory,
// responsiveness of the HTTP workers meanwhile, the checks) and HTML sections (comparison charts,
// progress, memory and event-loop delay over time).
import { availableParallelism } from 'node:os';
import { CPU_COUNTED } from './cpu-window.ts';
import type { ImportFile } from './import-csv-file.ts';
import type { ProbeRecord } from './import-probe.ts';
import type { ImportModelResult, ImportSettings } from './import.ts';
import { escapeHtml, htmlTable, paragraph, type ReportSection } from './html.ts';
import { describeMachine } from './machine.ts';
import type { ScenarioReport } from './scenario.ts';
import { formatMs, maxOf, summarize } from './stats.ts';
import { comparisonChart, lineChart } from './charts.ts';
import { formatTable, type TextTable } from './text-table.ts';

const MiB = 2 ** 20;

function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? 'n/a' : `${(bytes / MiB).toFixed(0)} MiB`;
}

function cpuCell(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : formatMs(ms);
}

/** Rows per second over the whole window, upload included. */
export function rowsPerSecond(result: ImportModelResult): number {
  const processed = result.final?.processed ?? 0;
  return result.doneMs > 0 ? (processed * 1000) / result.doneMs : Number.NaN;
}

/**
 * Rows per second over the last part of the run (the last 2 minutes, or its second half if
 * shorter): the pace at the end, which a projection must use when the pace falls as tables grow.
 */
export function recentRowsPerSecond(result: ImportModelResult): number {
  const last = result.progress.at(-1);
  if (!last) return Number.NaN;
  const from = last.at - Math.min(120_000, last.at / 2);
  const first = result.progress.find((p) => p.at >= from) ?? last;
  return last.at > first.at ? ((last.processed - first.processed) * 1000) / (last.at - first.at) : Number.NaN;
}

/** For a run stopped by the time limit: when it would have been done at its final pace. */
export function projectedDoneMs(result: ImportModelResult, rows: number): number {
  const rate = recentRowsPerSecond(result);
  const processed = result.final?.processed ?? 0;
  return rate > 0 ? result.doneMs + ((rows - processed) * 1000) / rate : Number.NaN;
}

function timeCell(result: ImportModelResult, rows: number): string {
  if (result.outcome === 'done') return formatMs(result.doneMs);
  if (result.outcome === 'time limit') {
    return `stopped at ${formatMs(result.doneMs)} (${result.final?.processed ?? 0} rows, last 2 min ${recentRowsPerSecond(result).toFixed(0)} rows/s); projected ${formatMs(projectedDoneMs(result, rows))}`;
  }
  return `${result.outcome} at ${formatMs(result.doneMs)}`;
}

function answered(records: readonly ProbeRecord[]): ProbeRecord[] {
  return records.filter((r) => r.status !== 0);
}

function probeCells(records: readonly ProbeRecord[]): string[] {
  const latency = summarize(answered(records).map((r) => r.endedAt - r.startedAt));
  return [formatMs(latency.p50), formatMs(latency.p99), formatMs(latency.max)];
}

function probeTrouble(records: readonly ProbeRecord[]): string {
  const failed = records.filter((r) => r.status === 0).length;
  const shed = records.filter((r) => r.status === 503).length;
  const bad = records.filter((r) => r.status >= 300 && r.status !== 503).length;
  return `${records.length - failed - bad - shed} ok, ${shed} 503, ${bad} other non-2xx, ${failed} no answer`;
}

function delayMs(values: readonly number[]): string {
  const max = maxOf(values.filter((v) => Number.isFinite(v)));
  return Number.isFinite(max) ? formatMs(max * 1000) : 'n/a';
}

export function renderImportReport(settings: ImportSettings, file: ImportFile, results: readonly ImportModelResult[]): ScenarioReport {
  const base = results[0];
  const baseRate = base ? rowsPerSecond(base) : Number.NaN;
  const throughput: TextTable = {
    title: `import: ${file.rows} rows (${file.unique} students, ${file.duplicates} repeated, ${file.invalid} invalid), ${(file.bytes / MiB).toFixed(1)} MiB, ${file.demand.size} courses; ${settings.workers} HTTP workers, EMAIL_CONCURRENCY ${settings.emailConcurrency}`,
    headers: ['model', 'IMPORT_THREADS', 'outcome', 'upload (202)', 'time to done', 'rows/s', 'speed-up', 'created', 'existing', 'rejected'],
    rows: results.map((r) => {
      const rate = rowsPerSecond(r);
      return [
        r.model.label, String(r.model.threads), r.outcome, formatMs(r.uploadMs), timeCell(r, file.rows), `${rate.toFixed(0)} /s`,
        `${(rate / baseRate).toFixed(2)}x`, String(r.final?.created ?? 'n/a'), String(r.final?.existing ?? 'n/a'), String(r.final?.rejected ?? 'n/a'),
      ];
    }),
  };
  const resources: TextTable = {
    title: `CPU (upload start to done) and resident memory (VmRSS every 200 ms; job worker's VmHWM)`,
    headers: ['model', 'CPU job worker', 'CPU HTTP+supervisor', 'CPU postgres', 'CPU bench', 'CPU other', `busy (of ${availableParallelism()} cores)`,
      'job worker RSS before', 'job worker peak', 'job worker VmHWM', 'service RSS before', 'service peak'],
    rows: results.map((r) => {
      const service = r.cpu.service;
      const total = service === undefined ? undefined : service.totalMs + r.cpu.benchMs + (r.cpu.otherMs ?? 0);
      const rest = service?.byTree['service'] === undefined || r.jobsCpuMs === undefined ? undefined : Math.max(0, service.byTree['service'] - r.jobsCpuMs);
      return [
        r.model.label, cpuCell(r.jobsCpuMs), cpuCell(rest), cpuCell(service?.byTree['postgres']), formatMs(r.cpu.benchMs), cpuCell(r.cpu.otherMs),
        total === undefined ? 'n/a' : `${((100 * total) / (r.doneMs * availableParallelism())).toFixed(0)}%`,
        mib(r.memoryBefore.byRole.jobs), mib(maxOf(r.memory.map((s) => s.byRole.jobs))), mib(r.jobsHighWater),
        mib(r.memoryBefore.total), mib(maxOf(r.memory.map((s) => s.total))),
      ];
    }),
  };
  const responsiveness: TextTable = {
    title: `HTTP workers meanwhile: probe at ${settings.probeRate} req/s (GET /courses/{id}, POST /register), idle ${3} s before vs during the import; event-loop delay p99 per 1 s scrape, max`,
    headers: ['model', 'idle p50', 'idle p99', 'idle max', 'import p50', 'import p99', 'import max', 'probe answers', 'polls refused', 'loop delay http idle', 'loop delay http', 'loop delay jobs', 'emails sent meanwhile'],
    rows: results.map((r) => [
      r.model.label, ...probeCells(r.probeIdle), ...probeCells(r.probe), probeTrouble(r.probe), String(r.pollsRefused),
      delayMs(r.loopDelayIdle.map((s) => s.http)), delayMs(r.loopDelay.map((s) => s.http)), delayMs(r.loopDelay.map((s) => s.jobs)), String(r.emailsDuringImport),
    ]),
  };

  const failures: string[] = [];
  for (const r of results) {
    for (const c of r.checks) if (!c.ok) failures.push(`${r.model.label}: ${c.label}: ${c.detail}`);
    const errors = r.probe.filter((p) => p.status >= 500 && p.status !== 503).length;
    if (errors > 0) failures.push(`${r.model.label}: ${errors} probe answers were 5xx (not 503 overloaded)`);
  }
  const checkCount = results[0]?.checks.length ?? 0;
  const partial = results.some((r) => r.outcome === 'time limit');
  const verdict = failures.length === 0
    ? `Checks: passed (${checkCount} checks per model against the database${partial ? '; stopped by --time-limit-s, figures partial, times projected' : ''})`
    : `Checks: FAILED (${failures.length} problems)`;

  const checkLines = results.flatMap((r) => r.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${r.model.label}: ${c.label} (${c.detail})`));
  const notes = [
    'Time: from the upload\'s first byte to the first GET /imports/{id} (polled every 200 ms) that says done; rows/s = rows processed / that time.',
    'Speed-up: rows/s of the model over rows/s of 1 thread. Each model runs on a fresh service and a fresh database.',
    ...(results.some((r) => r.outcome === 'time limit')
      ? ['Stopped by --time-limit-s: rows/s is over the part measured; "projected" adds the rows left at the pace of the last 2 minutes (PROJECTED, not measured).']
      : []),
    'Every created row is a registration through registrar_register_batch (the group commit of POST /register), in batches of 1000, one transaction each, and queues an email job, which the job worker sends meanwhile: the import shares the cores with its own emails, PostgreSQL and the bench.',
  ];
  const text = [
    formatTable(throughput), '',
    formatTable(resources), '',
    formatTable(responsiveness), '',
    ...checkLines, '',
    ...notes,
    CPU_COUNTED,
  ].join('\n');

  const groups = (value: (r: ImportModelResult) => number) => results.map((r) => ({ label: r.model.label, bars: [{ label: r.outcome === 'done' ? 'done' : r.outcome, value: value(r) }] }));
  const sections: ReportSection[] = [
    {
      heading: 'Summary',
      html: [
        htmlTable(throughput), htmlTable(resources), htmlTable(responsiveness),
        paragraph(verdict, failures.length === 0 ? 'ok' : 'fail'),
        `<ul>${results.flatMap((r) => r.checks.map((c) => `<li class="${c.ok ? 'ok' : 'fail'}">${escapeHtml(`${r.model.label}: ${c.label}`)}: <span class="note">${escapeHtml(c.detail)}</span></li>`)).join('')}</ul>`,
        ...notes.map((n) => paragraph(n, 'note')),
        paragraph(CPU_COUNTED, 'note'),
      ].join('\n'),
    },
    {
      heading: '1 thread vs the pool',
      html: [
        comparisonChart({ title: 'Time from upload to done (or to the time limit)', groups: groups((r) => r.doneMs) }),
        comparisonChart({ title: 'Rows per second', groups: groups(rowsPerSecond), unit: 'count', suffix: ' rows/s', yLabel: 'rows/s' }),
      ].join('\n'),
    },
    {
      heading: 'Progress',
      html: lineChart({
        title: 'Rows processed since the upload started',
        series: results.map((r) => ({ label: r.model.label, points: r.progress.map((p) => ({ x: p.at, y: p.processed })) })),
        xLabel: 'time since the upload started',
        yLabel: 'rows processed',
        yUnit: 'rows',
      }),
    },
    {
      heading: 'Memory',
      html: results.map((r) => lineChart({
        title: `${r.model.label}: resident memory (VmRSS) of the service's processes`,
        series: [
          { label: 'total', points: r.memory.map((s) => ({ x: s.at, y: s.total / MiB })) },
          { label: 'job worker (its threads included)', points: r.memory.map((s) => ({ x: s.at, y: s.byRole.jobs / MiB })) },
          { label: `HTTP workers (${settings.workers})`, points: r.memory.map((s) => ({ x: s.at, y: s.byRole.http / MiB })) },
          { label: 'supervisor', points: r.memory.map((s) => ({ x: s.at, y: s.byRole.supervisor / MiB })) },
        ],
        xLabel: 'time since the upload started',
        yLabel: 'resident memory (MiB)',
        yUnit: 'MiB',
      })).join('\n'),
    },
    {
      heading: 'Event-loop delay',
      html: lineChart({
        title: 'HTTP workers: event-loop delay p99 per second (max over the workers), ms',
        series: results.map((r) => ({ label: r.model.label, points: r.loopDelay.filter((s) => Number.isFinite(s.http)).map((s) => ({ x: s.at, y: s.http * 1000 })) })),
        xLabel: 'time since the upload started',
        yLabel: 'event-loop delay p99 (ms)',
        yUnit: 'ms',
      }),
    },
  ];
  return {
    title: 'Registrar bench: import',
    meta: [
      `Measured ${new Date().toISOString()} on ${describeMachine()}.`,
      `${file.rows} rows over ${file.demand.size} courses with room for all, ${settings.duplicatePercent}% repeated students, 1 invalid row in 2000; SMTP ${settings.emailDelayMs} ms/message; the service, PostgreSQL and the bench share the cores.`,
    ],
    text,
    sections,
    failures,
    verdict,
  };
}
