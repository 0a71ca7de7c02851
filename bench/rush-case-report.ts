// Owns the parts of the rush report that a preset case and --compare-db add: the case's target
// and whether the figures met it, the freed-slot trials, and the service beside the database alone.
import { FULL_COURSE_RECHECK_MS } from '../src/domain/full-courses.ts';
import { DATABASE_STRATEGIES } from './database-ceiling.ts';
import { ATTEMPT_INTERVAL_MS } from './freed-slot-check.ts';
import { describeTarget, judgeTarget } from './rush-cases.ts';
import type { RushResult } from './rush.ts';
import { formatMs, maxOf, summarize } from './stats.ts';
import type { TextTable } from './text-table.ts';

/** "Case --hot: ...", its target and the verdict on it; none without a preset case. */
export function caseLines(result: RushResult): string[] {
  const rushCase = result.settings.rushCase;
  if (!rushCase) return [];
  const answered = result.answers.filter((a) => a.status !== 0);
  const judged = judgeTarget(rushCase.target, {
    created: result.answers.filter((a) => a.status === 201).length,
    answers: answered.length,
    durationMs: result.end - result.start,
    p99Ms: summarize(answered.map((a) => a.endedAt - a.startedAt)).p99,
  });
  return [
    `Case --${rushCase.name}: ${rushCase.summary}${result.settings.overridden.length === 0 ? '' : `; here with ${result.settings.overridden.join(', ')}`}.`,
    `Target: ${describeTarget(rushCase.target)}. Measured: ${judged.text} (informational: machines differ; only broken invariants and late freed places fail the run).`,
  ];
}

export function freedSlotTable(result: RushResult): TextTable | undefined {
  const check = result.freedSlots;
  if (!check) return undefined;
  return {
    title: `Freed-slot check on the full course: from the admin change's answer to the first 201, one attempt every ${ATTEMPT_INTERVAL_MS} ms on a new connection (bound ${check.boundMs} ms = FULL_COURSE_RECHECK_MS ${FULL_COURSE_RECHECK_MS} + ${check.marginMs} ms margin for scheduling)`,
    headers: ['trial', 'change', 'primed with', 'attempts', '409 before the 201', 'delay', 'verdict'],
    rows: check.trials.map((t, i) => [
      String(i + 1), t.change, t.primed, String(t.attempts), String(t.refusedBefore), formatMs(t.delayMs),
      Number.isFinite(t.delayMs) && t.delayMs <= check.boundMs ? 'within bound' : 'LATE',
    ]),
  };
}

export function freedSlotVerdict(result: RushResult): string | undefined {
  const check = result.freedSlots;
  if (!check) return undefined;
  const slowest = maxOf(check.trials.map((t) => t.delayMs));
  return check.violations.length === 0
    ? `Freed-slot check: passed (${check.trials.length} trials, slowest ${formatMs(slowest)}, bound ${check.boundMs} ms)`
    : `Freed-slot check: FAILED (${check.violations.length} of ${check.trials.length} trials)`;
}

type SideFigures = { answers: number; created: number; durationMs: number; p50: number; p99: number; postgresMs: number | undefined };

function sideFigures(records: readonly { startedAt: number; endedAt: number; answered: boolean; created: boolean }[], start: number, end: number, postgresMs: number | undefined): SideFigures {
  const answered = records.filter((r) => r.answered);
  const latency = summarize(answered.map((r) => r.endedAt - r.startedAt));
  return { answers: answered.length, created: records.filter((r) => r.created).length, durationMs: end - start, p50: latency.p50, p99: latency.p99, postgresMs };
}

const perSecond = (count: number, ms: number) => (ms > 0 ? (count * 1000) / ms : Number.NaN);
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !(b > 0) ? 'n/a' : `${(a / b).toFixed(2)}x`);
const cpuCell = (ms: number | undefined) => (ms === undefined ? 'n/a' : formatMs(ms));

/** The service's rush and the same work on PostgreSQL alone, side by side, and their ratio. */
export function databaseComparisonTable(result: RushResult): TextTable | undefined {
  const database = result.database;
  if (!database) return undefined;
  const service = sideFigures(
    result.answers.map((a) => ({ startedAt: a.startedAt, endedAt: a.endedAt, answered: a.status !== 0, created: a.status === 201 })),
    result.start, result.end, result.cpuRush.service?.byTree['postgres'],
  );
  const alone = sideFigures(
    database.answers.map((a) => ({ startedAt: a.startedAt, endedAt: a.endedAt, answered: a.outcome !== 'error', created: a.outcome === 'created' })),
    database.start, database.end, database.cpu.service?.byTree['postgres'],
  );
  const row = (label: string, f: SideFigures) => [
    label, String(f.answers), String(f.created), formatMs(f.durationMs), `${perSecond(f.answers, f.durationMs).toFixed(0)} /s`,
    `${perSecond(f.created, f.durationMs).toFixed(0)} /s`, formatMs(f.p50), formatMs(f.p99), cpuCell(f.postgresMs),
    f.postgresMs === undefined || f.answers === 0 ? 'n/a' : formatMs(f.postgresMs / f.answers),
  ];
  const perAnswer = (f: SideFigures) => (f.postgresMs === undefined || f.answers === 0 ? undefined : f.postgresMs / f.answers);
  return {
    title: `The service beside PostgreSQL alone, the same ${result.answers.length} registrations on the same courses`,
    headers: ['run', 'answers', 'created', 'duration', 'answers/s', 'created/s', 'p50', 'p99', 'postgres CPU', 'postgres CPU per answer'],
    rows: [
      row(`service: HTTP, ${result.settings.workers} workers, ${result.settings.concurrency} connections`, service),
      row(`database only: ${database.strategy}, ${database.connections} connections`, alone),
      ['service / database', '', '', ratio(service.durationMs, alone.durationMs),
        ratio(perSecond(service.answers, service.durationMs), perSecond(alone.answers, alone.durationMs)),
        ratio(perSecond(service.created, service.durationMs), perSecond(alone.created, alone.durationMs)),
        ratio(service.p50, alone.p50), ratio(service.p99, alone.p99), ratio(service.postgresMs, alone.postgresMs), ratio(perAnswer(service), perAnswer(alone))],
    ],
  };
}

export function databaseNote(result: RushResult): string | undefined {
  const database = result.database;
  if (!database) return undefined;
  const errors = database.answers.filter((a) => a.outcome === 'error');
  return `Database only: after the service stopped, a fresh database of the same PostgreSQL with the same courses; the warm-up (${database.warmupAnswers.length} registrations) first, not counted; `
    + `then the same registrations in the same order through postgres.js, ${database.connections} connections in a closed loop, strategy ${database.strategy}: ${DATABASE_STRATEGIES[database.strategy]}. `
    + `Latency is the statement's round trip; "postgres CPU" the cluster's in each window. `
    + `${errors.length === 0 ? 'No statement failed.' : `${errors.length} statements failed, e.g. ${errors[0]!.error ?? 'unknown'}.`} `
    + `Its invariants: ${database.violations.length === 0 ? 'passed' : `FAILED (${database.violations.length} violations)`}.`;
}
