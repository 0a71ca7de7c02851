// Owns the presentation of a `rush` run: tables for stdout (throughput, latency, statuses, errors, CPU,
// emails, invariants) and HTML sections (latency histogram, answers per interval).
import { availableParallelism } from 'node:os';
import { CPU_COUNTED, type CpuWindow } from './cpu-window.ts';
import { escapeHtml, htmlTable, paragraph, type ReportSection } from './html.ts';
import { INVARIANT_CHECKS, type Violation } from '../test/support/invariants.ts';
import type { AnswerRecord } from '../test/support/rush.ts';
import { describeMachine } from './machine.ts';
import { caseLines, databaseComparisonTable, databaseNote, freedSlotTable, freedSlotVerdict } from './rush-case-report.ts';
import type { RushResult } from './rush.ts';
import type { ScenarioReport } from './scenario.ts';
import { countPerInterval, formatMs, histogram, summarize } from './stats.ts';
import { barChart } from './charts.ts';
import { formatTable, type TextTable } from './text-table.ts';

function answerKind(a: AnswerRecord): string {
  if (a.status === 0) return 'no answer (network error / timeout)';
  if (a.status === 201) return `201 created, ${a.registrationStatus ?? '?'}`;
  if (a.status === 200) return '200 already registered (duplicate)';
  if (a.problemType) return `${a.status} ${a.problemType.replace('/problems/', '')}`;
  return String(a.status);
}

function cpuRows(label: string, window: CpuWindow | undefined, durationMs: number): string[][] {
  if (!window) return [];
  const capacity = durationMs * availableParallelism();
  const share = (ms: number | undefined) => (ms === undefined || capacity <= 0 ? 'n/a' : `${((100 * ms) / capacity).toFixed(0)}%`);
  const cell = (ms: number | undefined) => (ms === undefined ? 'n/a' : formatMs(ms));
  const service = window.service;
  return [[label, formatMs(durationMs), cell(service?.byTree['service']), cell(service?.byTree['postgres']), formatMs(window.benchMs),
    cell(window.otherMs), share(service === undefined ? undefined : service.totalMs + window.benchMs + (window.otherMs ?? 0))]];
}

function optional<T>(value: T | undefined): T[] {
  return value === undefined ? [] : [value];
}

export function renderRushReport(result: RushResult): ScenarioReport {
  const { settings, workload, answers } = result;
  const durationMs = result.end - result.start;
  const answered = answers.filter((a) => a.status !== 0);
  const latency = summarize(answered.map((a) => a.endedAt - a.startedAt));
  const errors = answers.filter((a) => a.status === 0);
  const throughput = durationMs > 0 ? (answered.length * 1000) / durationMs : Number.NaN;

  const kinds = new Map<string, number>();
  for (const a of answers) kinds.set(answerKind(a), (kinds.get(answerKind(a)) ?? 0) + 1);

  const headline: TextTable = {
    title: `rush${settings.rushCase ? ` --${settings.rushCase.name}` : ''}: ${answers.length} requests (${settings.students} students + ${workload.duplicates} duplicates) on ${settings.courses} course${settings.courses === 1 ? '' : 's'}, concurrency ${settings.concurrency}, ${settings.workers} HTTP workers`,
    headers: ['answers', 'errors', 'duration', 'throughput', 'p50', 'p90', 'p99', 'max'],
    rows: [[String(answered.length), String(errors.length), formatMs(durationMs), `${throughput.toFixed(0)} /s`, formatMs(latency.p50), formatMs(latency.p90), formatMs(latency.p99), formatMs(latency.max)]],
  };
  const statusTable: TextTable = {
    title: `Answers by status (hot course: ${workload.hotDemand} students for ${settings.hotCapacity} seats + ${settings.hotWaitlist} waitlist places)`,
    headers: ['answer', 'count'],
    rows: [...kinds].sort(([a], [b]) => a.localeCompare(b)).map(([kind, n]) => [kind, String(n)]),
  };
  const cpuTable: TextTable = {
    title: 'CPU time',
    headers: ['window', 'wall-clock', 'service', 'postgres', 'bench', 'other', `busy (of ${availableParallelism()} cores)`],
    rows: [
      ...cpuRows('rush: first request to last answer', result.cpuRush, durationMs),
      ...cpuRows('then: until the last email', result.cpuEmails, Number.isFinite(result.lastEmailMs) ? Math.max(0, result.lastEmailMs - durationMs) : 0),
      ...(result.database ? cpuRows('database only: first to last statement', result.database.cpu, result.database.end - result.database.start) : []),
    ],
  };
  const emailLine = settings.emailTimeoutMs > 0
    ? `Emails (SMTP ${settings.emailDelayMs} ms/message, EMAIL_CONCURRENCY ${settings.emailConcurrency}): ${result.emailsAtLastAnswer} of the rush's accepted by its last answer (the warm-up's were sent before it began); ${result.emailsReceived}/${result.emailsExpected} (all registration events, warm-up included) by ${formatMs(result.lastEmailMs)} after the first request; email_deliveries records ${result.emailsRecorded.sent} sent, ${result.emailsRecorded.failed} failed.`
    : 'Emails: not waited for (--email-timeout-ms 0).';
  const errorSamples = [...new Set(errors.map((e) => e.error ?? 'unknown'))].slice(0, 5);
  const violationText = (v: Violation) => `${v.check}: ${v.subject}: ${v.detail}`;
  const failures = [
    ...result.violations.map(violationText),
    ...(result.freedSlots?.violations ?? []).map((v) => `freed slot: ${v}`),
    ...(result.database?.violations ?? []).map((v) => `database only: ${violationText(v)}`),
  ];
  const allAnswers = answers.length + settings.warmup + (result.freedSlots?.answers.length ?? 0);
  const verdicts = [
    result.violations.length === 0
      ? `Invariants: passed (${INVARIANT_CHECKS.length} checks over ${settings.courses + 1} courses, ${result.rows} rows, ${allAnswers} answers)`
      : `Invariants: FAILED (${result.violations.length} violations)`,
    ...optional(freedSlotVerdict(result)),
    ...(result.database ? [`Invariants of the database-only run: ${result.database.violations.length === 0 ? 'passed' : `FAILED (${result.database.violations.length} violations)`}`] : []),
  ];
  const cases = caseLines(result);
  const caseText = cases.length === 0 ? [] : [...cases, ''];
  const freedSlots = freedSlotTable(result);
  const comparison = databaseComparisonTable(result);

  const text = [
    formatTable(headline), '',
    ...caseText,
    formatTable(statusTable), '',
    ...(freedSlots ? [formatTable(freedSlots), ''] : []),
    ...(comparison ? [formatTable(comparison), '', databaseNote(result)!, ''] : []),
    formatTable(cpuTable), '',
    emailLine,
    ...(errorSamples.length > 0 ? ['', `Network errors (${errors.length}), e.g.:`, ...errorSamples.map((e) => `  ${e}`)] : []),
    '',
    `Latency: from sending a request to its whole answer, with ${settings.concurrency} requests in flight (a closed loop: each connection sends its next request when the answer is in). Warm-up not counted: ${settings.warmup} requests on another course with seats for half of them (so both the created and the refused path are compiled), then its emails, before the rush.`,
    CPU_COUNTED,
  ].join('\n');

  // Histogram up to a little above p99, the rest in one last bin; per-interval answers.
  const latencies = answered.map((a) => a.endedAt - a.startedAt);
  const upTo = Math.max(1, Number.isFinite(latency.p99) ? Math.min(latency.max, latency.p99 * 1.25) : 1);
  const bins = histogram(latencies, 40, upTo);
  const intervalMs = durationMs <= 30_000 ? 100 : 1_000;
  const perInterval = countPerInterval(answered.map((a) => a.endedAt), result.start, result.end, intervalMs);
  const sections: ReportSection[] = [
    {
      heading: 'Summary',
      html: [
        htmlTable(headline),
        ...cases.map((line) => paragraph(line)),
        htmlTable(statusTable),
        ...(freedSlots ? [htmlTable(freedSlots)] : []),
        ...(comparison ? [htmlTable(comparison), paragraph(databaseNote(result)!, 'note')] : []),
        htmlTable(cpuTable),
        paragraph(emailLine),
        ...(errorSamples.length > 0 ? [paragraph(`Network errors (${errors.length}), e.g.: ${errorSamples.join(' | ')}`, 'fail')] : []),
        ...verdicts.map((line) => paragraph(line, /FAILED/.test(line) ? 'fail' : 'ok')),
        ...(failures.length > 0 ? [`<ul>${failures.map((f) => `<li class="fail">${escapeHtml(f)}</li>`).join('')}</ul>`] : []),
        `<ul class="note">${INVARIANT_CHECKS.map((c) => `<li>${escapeHtml(c)}</li>`).join('')}</ul>`,
        paragraph(CPU_COUNTED, 'note'),
      ].join('\n'),
    },
    {
      heading: 'Latency histogram',
      html: barChart({
        title: `Answer latency, ${answered.length} answers (p50 ${formatMs(latency.p50)}, p99 ${formatMs(latency.p99)}, max ${formatMs(latency.max)})`,
        x: bins.map((b) => b.from),
        values: bins.map((b) => b.count),
        xAxis: { label: 'latency (bin start; the last bin holds everything above)', kind: 'ms' },
        yLabel: 'answers',
        yUnit: 'answers',
        label: 'answers in the bin',
      }),
    },
    {
      heading: 'Throughput over time',
      html: barChart({
        title: `Answers per second, per ${intervalMs} ms interval (${throughput.toFixed(0)} /s on average)`,
        x: perInterval.map((_, i) => i * intervalMs),
        values: perInterval.map((n) => Math.round((n * 1000) / intervalMs)),
        xAxis: { label: 'time since the first request (interval start)', kind: 'ms' },
        yLabel: 'answers/s',
        yUnit: 'answers/s',
        label: 'answers per second',
        color: '#1f9d55',
      }),
    },
  ];
  return {
    title: `Registrar bench: rush${settings.rushCase ? ` --${settings.rushCase.name}` : ''}`,
    meta: [
      `Measured ${new Date().toISOString()} on ${describeMachine()}.`,
      `Hot course share ${settings.hotSharePercent}%, duplicates ${settings.duplicatePercent}%, email on the job queue; the service, PostgreSQL and the bench share the cores.`,
    ],
    text,
    sections,
    failures,
    verdict: verdicts.join('\n'),
  };
}
