// Owns the presentation of a `seed` run: the table printed to stdout and the HTML sections (a
// comparison of the models on one time axis, and per model its requests and emails over time).
import { CPU_COUNTED } from './cpu-window.ts';
import { escapeHtml, htmlTable, paragraph, type ReportSection } from './html.ts';
import { INVARIANT_CHECKS } from '../test/support/invariants.ts';
import { describeMachine } from './machine.ts';
import type { ScenarioReport } from './scenario.ts';
import type { SeedModelResult, SeedSettings } from './seed.ts';
import { countBy, formatMs, summarize } from './stats.ts';
import { comparisonChart, timelineChart } from './charts.ts';
import { formatTable, type TextTable } from './text-table.ts';

function cpuCell(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : formatMs(ms);
}

function statuses(result: SeedModelResult): string {
  const counts = countBy(result.answers, (a) => (a.status === 0 ? 'error' : a.status));
  return [...counts].sort().map(([status, n]) => `${n}x${status}`).join(' ');
}

function summaryTable(settings: SeedSettings, results: readonly SeedModelResult[]): TextTable {
  return {
    title: `seed: ${settings.n} registrations per model, SMTP ${settings.emailDelayMs} ms/message, ${settings.workers} HTTP workers, EMAIL_CONCURRENCY ${settings.emailConcurrency}`,
    headers: ['model', 'last answer', 'last email', 'answer p50', 'answer p99', 'CPU service', 'CPU postgres', 'CPU total', 'CPU bench', 'CPU other', 'answers', 'emails'],
    rows: results.map((r) => {
      const latency = summarize(r.answers.filter((a) => a.status !== 0).map((a) => a.endedAt - a.startedAt));
      return [
        `${r.model.number} ${r.model.label}`,
        formatMs(r.lastAnswerMs),
        formatMs(r.lastEmailMs),
        formatMs(latency.p50),
        formatMs(latency.p99),
        cpuCell(r.cpu.service?.byTree['service']),
        cpuCell(r.cpu.service?.byTree['postgres']),
        cpuCell(r.cpu.service?.totalMs),
        formatMs(r.cpu.benchMs),
        cpuCell(r.cpu.otherMs),
        statuses(r),
        `${r.emailsReceived}/${r.emailsExpected}`,
      ];
    }),
  };
}

export function renderSeedReport(settings: SeedSettings, results: readonly SeedModelResult[]): ScenarioReport {
  const table = summaryTable(settings, results);
  const failures = results.flatMap((r) => [
    ...r.violations.map((v) => `model ${r.model.number}: ${v.check}: ${v.subject}: ${v.detail}`),
    ...(r.answers.some((a) => a.status !== 201) ? [`model ${r.model.number}: not every registration was answered 201 (${statuses(r)})`] : []),
  ]);
  const windowNote = `Times are from the first request sent, on a service warmed up with ${settings.warmup} registrations on another course. The CPU window runs from just before the first request to the last email accepted by the SMTP server.`;
  const text = [formatTable(table), '', windowNote, CPU_COUNTED].join('\n');

  const comparison = comparisonChart({
    title: 'Every model on one time axis (from the first request sent)',
    groups: results.map((r) => ({
      label: `${r.model.number} ${r.model.label}`,
      bars: [
        { label: 'last answer', value: r.lastAnswerMs },
        { label: 'last email accepted', value: r.lastEmailMs },
        { label: 'CPU: service + postgres', value: r.cpu.service?.totalMs ?? 0, color: '#7a5af8' },
      ],
    })),
  });
  const timelines = results.map((r) => timelineChart({
    title: `Model ${r.model.number}: ${r.model.label}: requests sent, answered, and their emails accepted, over time`,
    rows: r.timeline,
  }));
  const sections: ReportSection[] = [
    {
      heading: 'Summary',
      html: [
        htmlTable(table),
        paragraph(windowNote, 'note'),
        paragraph(CPU_COUNTED, 'note'),
        paragraph(failures.length === 0 ? `Invariants and emails: passed (${INVARIANT_CHECKS.length} checks per model).` : `FAILED: ${failures.length} problems.`, failures.length === 0 ? 'ok' : 'fail'),
        ...(failures.length > 0 ? [`<ul>${failures.map((f) => `<li class="fail">${escapeHtml(f)}</li>`).join('')}</ul>`] : []),
      ].join('\n'),
    },
    { heading: 'Wall-clock and CPU, side by side', html: comparison },
    {
      heading: 'Timelines',
      html: [
        paragraph('Each model on its own time axis. Sequential: a staircase, each request waits for the one before and its email. Concurrent with the email in the request: all requests overlap, each still lasts as long as its email. Email on the job queue: the answers come back at once, the emails follow, bounded by EMAIL_CONCURRENCY.', 'note'),
        ...timelines,
      ].join('\n'),
    },
  ];
  return {
    title: 'Registrar bench: seed',
    meta: [`Measured ${new Date().toISOString()} on ${describeMachine()}.`, `Each model on a fresh service and a fresh database, warmed up first with ${settings.warmup} registrations on another course (not measured); the service, PostgreSQL and the bench share the cores.`],
    text,
    sections,
    failures,
    verdict: failures.length === 0 ? `Invariants: passed (${INVARIANT_CHECKS.length} checks per model, ${results.length} models)` : `Invariants: FAILED (${failures.length} problems)`,
  };
}
