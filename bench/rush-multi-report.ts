// Owns the side-by-side of `rush --multi`: the same rush single-course only and with a share of
// students asking for several courses in one request, in requests per second and latency.
import { htmlTable, type ReportSection } from './html.ts';
import type { RushResult } from './rush.ts';
import { MULTI_COURSES } from './rush-workload.ts';
import type { ScenarioReport } from './scenario.ts';
import { formatMs, summarize } from './stats.ts';
import { formatTable, type TextTable } from './text-table.ts';

function figures(label: string, result: RushResult): { row: string[]; requestsPerSecond: number; cpuPerRequest: number } {
  const durationMs = result.end - result.start;
  const answered = result.answers.filter((a) => a.status !== 0);
  const latency = summarize(answered.map((a) => a.endedAt - a.startedAt));
  const requestsPerSecond = durationMs > 0 ? (answered.length * 1000) / durationMs : Number.NaN;
  const registrations = result.answers.reduce((n, a) => n + (a.status !== 201 ? 0 : (a.registrationIds?.length ?? 1)), 0);
  // The run's own CPU (service and PostgreSQL): on a shared machine, steadier than the wall clock.
  const cpuMs = result.cpuRush.service?.totalMs;
  const cpu = cpuMs === undefined ? ['n/a', 'n/a'] : [formatMs(cpuMs), `${((1000 * cpuMs) / Math.max(1, answered.length)).toFixed(0)} us`];
  return {
    requestsPerSecond,
    cpuPerRequest: cpuMs === undefined ? Number.NaN : cpuMs / Math.max(1, answered.length),
    row: [label, String(answered.length), String(result.workload.multiStudents), String(registrations), formatMs(durationMs),
      `${requestsPerSecond.toFixed(0)} /s`, `${((registrations * 1000) / durationMs).toFixed(0)} /s`, formatMs(latency.p50), formatMs(latency.p99), formatMs(latency.max), ...cpu],
  };
}

/** The multi-course run's report, with the single-course run beside it first; both runs' failures count. */
export function withSingleCourseComparison(report: ScenarioReport, single: RushResult, multi: RushResult, singleFailures: string[]): ScenarioReport {
  const percent = multi.settings.multiPercent;
  const a = figures('single-course only', single);
  const b = figures(`${percent}% ask for ${MULTI_COURSES} courses at once`, multi);
  const ratio = b.requestsPerSecond / a.requestsPerSecond;
  const table: TextTable = {
    title: `rush --multi ${percent}: the same students, first each asking for one course, then ${percent}% asking for ${MULTI_COURSES} in one request (all or nothing); each on a fresh service and database`,
    headers: ['run', 'requests', 'multi-course', 'registrations', 'duration', 'requests/s', 'registrations/s', 'p50', 'p99', 'max', 'CPU', 'CPU/request'],
    rows: [a.row, b.row],
  };
  const note = `Requests counted as requests: a request for ${MULTI_COURSES} courses is one (its registrations are counted apart). Multi-course throughput: ${(100 * ratio).toFixed(0)}% of single-course; by CPU (service + PostgreSQL) per request, ${(100 * a.cpuPerRequest / b.cpuPerRequest).toFixed(0)}%. CPU: the run's own processes, what a quiet machine would turn into throughput.`;
  const section: ReportSection = { heading: 'Single-course and multi-course requests', html: htmlTable(table) };
  return {
    ...report,
    text: [formatTable(table), note, '', 'The multi-course run in detail:', '', report.text].join('\n'),
    sections: [section, ...report.sections],
    failures: [...singleFailures.map((f) => `single-course run: ${f}`), ...report.failures],
  };
}
