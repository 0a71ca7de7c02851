// Owns the presentation of a `queue` run: its checks (seats in queue order, the random order from the
// seed, nobody admitted twice, no registration without admission, the invariants), tables per phase
// with the issue's targets, and the HTML charts (the opening over time, memory per stream).
import { availableParallelism } from 'node:os';
import { barChart, lineChart } from './charts.ts';
import type { CpuWindow } from './cpu-window.ts';
import { CPU_COUNTED } from './cpu-window.ts';
import { escapeHtml, htmlTable, paragraph, type ReportSection } from './html.ts';
import { describeMachine } from './machine.ts';
import { checkAdmissionOrder, checkArrivalOrder, checkRandomOrder, etaErrors, type EtaErrors } from './queue-checks.ts';
import type { QueueResult } from './queue.ts';
import type { RegisterRecord } from './queue-rush.ts';
import type { ScenarioReport } from './scenario.ts';
import { formatMs, summarize } from './stats.ts';
import { formatTable, type TextTable } from './text-table.ts';
import { spanOf, type TimedAnswer } from './connection-pool.ts';
import { checkInvariants, INVARIANT_CHECKS, type ObservedAnswer } from '../test/support/invariants.ts';

const MIB = 1024 * 1024;

function rate(count: number, ms: number): string {
  return ms > 0 ? `${Math.round((count * 1000) / ms).toLocaleString('en-US')} /s` : 'n/a';
}

function statusCounts(answers: readonly (TimedAnswer & { problemType?: string })[]): string {
  const counts = new Map<string, number>();
  for (const a of answers) {
    const key = a.status === 0 ? 'no answer' : a.problemType ? `${a.status} ${a.problemType.replace('/problems/', '')}` : String(a.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${n}x${k}`).join(', ');
}

function problemOf(answer: TimedAnswer): TimedAnswer & { problemType?: string } {
  if (answer.status < 400 || answer.body === '') return answer;
  try {
    const type = (JSON.parse(answer.body) as { type?: unknown }).type;
    return typeof type === 'string' ? { ...answer, problemType: type } : answer;
  } catch {
    return answer;
  }
}

/** One row of a load table: count, statuses, span, rate, latency percentiles. */
function loadRow(label: string, answers: readonly (TimedAnswer & { problemType?: string })[], spanMs?: number): string[] {
  const answered = answers.filter((a) => a.status !== 0);
  const latency = summarize(answered.map((a) => a.endedAt - a.startedAt));
  const span = spanMs ?? spanOf(answers);
  return [label, String(answers.length), statusCounts(answers), formatMs(span), rate(answered.length, span), formatMs(latency.p50), formatMs(latency.p99), formatMs(latency.max)];
}

const REGISTER_WINDOW_MS = 15_000;

/** The students' registrations grouped by the window of the opening they were sent in: where the tail is. */
function registrationWindows(records: readonly RegisterRecord[], openedAt: number): string[][] {
  const windows = new Map<number, RegisterRecord[]>();
  for (const r of records) {
    const w = Math.max(0, Math.floor((r.startedAt - openedAt) / REGISTER_WINDOW_MS));
    const group = windows.get(w);
    if (group) group.push(r);
    else windows.set(w, [r]);
  }
  return [...windows].sort(([a], [b]) => a - b).map(([w, group]) => {
    const latency = summarize(group.filter((a) => a.status !== 0).map((a) => a.endedAt - a.startedAt));
    return [`${(w * REGISTER_WINDOW_MS) / 1000}-${((w + 1) * REGISTER_WINDOW_MS) / 1000} s`, String(group.length), statusCounts(group), formatMs(latency.p50), formatMs(latency.p99), formatMs(latency.max)];
  });
}

function joinedNote(check: { answeredNotStored: number; storedNotAnswered: number }): string {
  const stored = check.storedNotAnswered > 0 ? `, ${check.storedNotAnswered} stored places whose join got no answer (committed after the client gave up)` : '';
  return ` Joins: ${check.answeredNotStored} answered places not stored${stored}.`;
}

function target(what: string, ok: boolean, measured: string): string {
  return `${what}: ${measured}: ${ok ? 'met' : 'missed'}`;
}

function cpuRow(label: string, window: CpuWindow | undefined, durationMs: number): string[] {
  if (!window) return [label, formatMs(durationMs), 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'];
  const capacity = durationMs * availableParallelism();
  const cell = (ms: number | undefined) => (ms === undefined ? 'n/a' : formatMs(ms));
  const busy = (window.service?.totalMs ?? 0) + window.benchMs + (window.otherMs ?? 0);
  return [label, formatMs(durationMs), cell(window.service?.byTree['service']), cell(window.service?.byTree['postgres']), formatMs(window.benchMs), cell(window.otherMs), capacity > 0 ? `${Math.round((100 * busy) / capacity)}%` : 'n/a'];
}

function percent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(100 * fraction).toFixed(1)}%` : 'n/a';
}

function etaRow(label: string, errors: EtaErrors): string[] {
  return [label, String(errors.readings), percent(errors.medianRelative), percent(errors.p90Relative), Number.isFinite(errors.medianAbsoluteSeconds) ? `${errors.medianAbsoluteSeconds.toFixed(1)} s` : 'n/a'];
}

function observed(course: string, records: readonly RegisterRecord[]): ObservedAnswer[] {
  return records.map((r) => ({
    course,
    emailKey: r.email.trim().toLowerCase(),
    status: r.status,
    ...(r.registrationId !== undefined ? { registrationId: r.registrationId } : {}),
    ...(r.problemType !== undefined ? { problemType: r.problemType } : {}),
  }));
}

export function renderQueueReport(result: QueueResult): ScenarioReport {
  const { settings, rush, places, streams } = result;
  const joins = result.joins.map(problemOf);
  const joined = joins.filter((a) => a.status === 201).length;
  const joinRow = loadRow('joins (POST /courses/{id}/queue)', joins);
  const joinLatency = summarize(joins.filter((a) => a.status !== 0).map((a) => a.endedAt - a.startedAt));
  const joinSpan = spanOf(joins);
  const joinRate = joinSpan > 0 ? (joins.length * 1000) / joinSpan : 0;

  const reads = result.reads ? result.reads.answers.map(problemOf) : [];
  const readRate = result.reads && result.reads.durationMs > 0 ? (reads.length * 1000) / result.reads.durationMs : 0;
  const rushMs = rush.endedAt - rush.openedAt;
  const students = rush.registrations;
  const studentLatency = summarize(students.filter((a) => a.status !== 0).map((a) => a.endedAt - a.startedAt));

  const loadTable: TextTable = {
    title: `queue: ${settings.students} students join a ${settings.order} queue for ${settings.seats} seats + ${settings.waitlist} waitlist places, ${settings.workers} HTTP workers`,
    headers: ['phase', 'requests', 'answers', 'span', 'rate', 'p50', 'p99', 'max'],
    rows: [
      joinRow,
      ...(result.reads ? [loadRow(`reads (GET /queue/{id}), ${settings.readConcurrency} in flight`, reads, result.reads.durationMs)] : []),
      loadRow('opening: admitted students register', students, rushMs),
      loadRow(`opening: ${settings.bots} bots, no or forged admission`, rush.bots, rushMs),
      loadRow('opening: students poll GET /queue/{id}', rush.polls.map(problemOf), rushMs),
    ],
  };
  const registerWindows: TextTable = {
    title: `Admitted students' registrations by when they were sent (${REGISTER_WINDOW_MS / 1000} s windows of the opening; no answer: none within --timeout-ms)`,
    headers: ['sent', 'requests', 'answers', 'p50', 'p99', 'max'],
    rows: registrationWindows(students, rush.openedAt),
  };
  const cpuTable: TextTable = {
    title: 'CPU time per phase',
    headers: ['phase', 'wall', 'service', 'postgres', 'bench', 'other', 'of the cores'],
    rows: [cpuRow('joins', result.joinCpu, joinSpan), ...(result.reads ? [cpuRow('reads', result.reads.cpu, result.reads.durationMs)] : []), cpuRow('opening', result.rushCpu, rushMs)],
  };

  const baseline = streams.memory[0]?.httpBytes ?? 0;
  const memoryTable: TextTable = {
    title: `Position streams: ${streams.opened} open (${streams.failed} failed) in ${formatMs(streams.durationMs)}; at the end ${streams.endedByServer} ended by the service once their place was final, ${streams.stillOpen} still open, ${streams.dropped} dropped; ${streams.messages} messages`,
    headers: ['streams open', 'HTTP workers RSS', 'over 0 streams', 'per stream'],
    rows: streams.memory.map((m) => [String(m.streams), `${(m.httpBytes / MIB).toFixed(1)} MiB`, `${((m.httpBytes - baseline) / MIB).toFixed(1)} MiB`, m.streams > 0 ? `${((m.httpBytes - baseline) / 1024 / m.streams).toFixed(1)} KiB` : '']),
  };

  // Checks.
  const order = checkAdmissionOrder(places);
  const joinedIds = result.students.map((s) => s.placeId);
  const ordering = settings.order === 'random'
    ? result.seed.revealed && result.seed.commitment ? checkRandomOrder(result.seed.revealed, result.seed.commitment, joinedIds, places) : undefined
    : checkArrivalOrder(joinedIds, places);
  const admittedAt = new Map(places.filter((p) => p.admittedAt !== null).map((p) => [p.id, p.admittedAt!]));
  const eta = etaErrors(rush.readings, admittedAt, rush.openedAt);
  const botWins = rush.bots.filter((b) => b.status === 201 || b.status === 200).length;
  const created = new Map<string, number>();
  for (const r of students.filter((s) => s.status === 201)) created.set(r.email, (created.get(r.email) ?? 0) + 1);
  const twice = [...created.values()].filter((n) => n > 1).length;
  const wentBack = result.students.filter((s) => s.wentBack).length;
  const refused = students.filter((s) => s.status !== 201);
  const statusOf = (status: string) => places.filter((p) => p.status === status).length;
  const expectFull = result.students.length > settings.seats + settings.waitlist ? [result.course] : [];
  const violations = checkInvariants({ ...result.snapshot, answers: [...observed(result.course, students), ...observed(result.course, rush.bots)], expectFull });

  const failures = [
    ...violations.map((v) => `${v.check}: ${v.subject}: ${v.detail}`),
    ...(botWins > 0 ? [`${botWins} bot requests without a valid admission were answered 201 or 200`] : []),
    ...(order.outOfOrder > 0 ? [`${order.outOfOrder} places admitted out of queue order, e.g. ${order.example}`] : []),
    ...(ordering === undefined ? ['the random order could not be checked: no seed or commitment shown'] : []),
    ...(ordering && !ordering.commitmentHolds ? ['the revealed seed does not match the SHA-256 commitment shown before opening'] : []),
    ...(ordering && ordering.mismatches > 0 ? [`${ordering.mismatches} of ${ordering.checked} places are not at the rank recomputed from the ${settings.order} order`] : []),
    ...(ordering && ordering.answeredNotStored > 0 ? [`${ordering.answeredNotStored} places named by 201 answers to joins are not stored`] : []),
    ...(twice > 0 ? [`${twice} students were answered 201 twice`] : []),
    ...(wentBack > 0 ? [`${wentBack} places were seen waiting again after their admission`] : []),
    ...(refused.length > 0 ? [`${refused.length} registrations of admitted students were not 201 (${statusCounts(refused)})`] : []),
    ...(joined !== settings.students ? [`${settings.students - joined} joins were not 201 (${statusCounts(joins.filter((a) => a.status !== 201))})`] : []),
    ...(streams.failed > 0 && !streams.unavailable ? [`${streams.failed} streams did not open, e.g. ${streams.failures[0]}`] : []),
    ...(streams.dropped > 0 ? [`${streams.dropped} streams ended before their place was final (${Object.entries(streams.dropReasons).sort(([, a], [, b]) => b - a).slice(0, 4).map(([why, n]) => `${n}x ${why}`).join('; ')})`] : []),
    ...(rush.timedOut ? ['the opening did not settle (places still waiting or admitted) within --opening-timeout-ms'] : []),
  ];

  const memoryPerThousand = streams.memory.length > 1 ? (streams.memory.at(-1)!.httpBytes - baseline) / Math.max(1, streams.memory.at(-1)!.streams) * 1000 / MIB : Number.NaN;
  const targets = [
    target('Joins >= 5,000/s, p99 < 100 ms', joinRate >= 5_000 && joinLatency.p99 < 100, `${Math.round(joinRate).toLocaleString('en-US')}/s, p99 ${formatMs(joinLatency.p99)}`),
    streams.unavailable
      ? `10,000 position streams: not measured (GET /queue/{id}/events answered "${streams.unavailable}")`
      : target(`${settings.streams.toLocaleString('en-US')} position streams held`, streams.opened === settings.streams && streams.dropped === 0, `${streams.opened} opened, ${streams.dropped} dropped, ${Number.isFinite(memoryPerThousand) ? `${memoryPerThousand.toFixed(1)} MiB of HTTP workers' RSS per 1,000` : 'memory n/a'}`),
    ...(result.reads ? [target('GET /queue/{id} >= 10,000/s', readRate >= 10_000, `${Math.round(readRate).toLocaleString('en-US')}/s`)] : []),
    target('Admitted students\' registrations p99 < 250 ms', studentLatency.p99 < 250, `p99 ${formatMs(studentLatency.p99)} over ${students.length}, beside ${rate(rush.bots.length, rushMs)} bot requests`),
    target('The estimate\'s median error < 20% after the first minute', eta.afterFirstMinute.medianRelative < 0.2, eta.afterFirstMinute.readings === 0 ? 'no readings after the first minute (the opening was shorter)' : `${percent(eta.afterFirstMinute.medianRelative)} over ${eta.afterFirstMinute.readings} readings`),
  ];
  const checkLines = [
    `Registrations without admission: ${botWins} of ${rush.bots.length} bot requests won anything (${statusCounts(rush.bots)}).`,
    `Seats in queue order: ${order.checked} admissions checked against their rank, ${order.outOfOrder} out of order.`,
    `Admitted once: ${statusOf('admitted') + statusOf('registered') + statusOf('expired')} places admitted (queue_states.admitted_total checked by the invariants), ${twice} answered 201 twice, ${wentBack} seen waiting again.`,
    ordering === undefined ? 'Order: not checkable (no seed shown).'
      : settings.order === 'random'
        ? `Random order: the seed ${ordering.commitmentHolds ? 'matches' : 'DOES NOT match'} the SHA-256 shown before opening; ${ordering.checked} places re-ranked from sha256(seed || id): ${ordering.mismatches} differ from the ranks used.${joinedNote(ordering)}`
        : `Arrival order: ${ordering.checked} ranks against the join order: ${ordering.mismatches} differ.${joinedNote(ordering)}`,
    `Students' polls waiting in the bench for a connection: at most ${Math.max(0, ...rush.samples.map((x) => x.pollsWaiting))} (sampled each second; a backlog means the service answered polls slower than the students asked).`,
    `The bench's main event loop through the opening (it adds to the latencies measured on it, the bots' and the polls'; the students' registrations are timed on a thread of their own): delay p50 ${formatMs(rush.benchLoopDelay.p50)}, p99 ${formatMs(rush.benchLoopDelay.p99)}, max ${formatMs(rush.benchLoopDelay.max)}.`,
    `Places at the end: ${statusOf('registered')} registered, ${statusOf('sold-out')} sold-out, ${statusOf('expired')} expired, ${statusOf('waiting')} waiting, ${statusOf('admitted')} admitted.`,
  ];
  const etaTable: TextTable = {
    title: 'estimatedWaitSeconds against the actual admission time (admitted_at), every reading of a waiting place',
    headers: ['readings', 'count', 'median error', 'p90 error', 'median |error|'],
    rows: [etaRow('first minute', eta.firstMinute), etaRow('after the first minute', eta.afterFirstMinute), etaRow(`after the first minute, >= ${eta.longWaitSeconds} s to wait`, eta.afterFirstMinuteLongWaits)],
  };
  const verdict = violations.length === 0
    ? `Invariants: passed (${INVARIANT_CHECKS.length} checks over ${result.snapshot.courses.length} courses, ${result.snapshot.registrations.length} rows, ${places.length} places, ${students.length + rush.bots.length} answers)`
    : `Invariants: FAILED (${violations.length} violations)`;
  const notes = [
    `${settings.joinRate > 0 ? `Joins: an open loop, ${settings.joinRate} arriving a second over at most ${settings.concurrency} connections, latency from when each was due (a wait for a free connection counts) to the whole answer.` : `Joins: a closed loop of ${settings.concurrency} connections, latency from sending to the whole answer.`} Reads: ${settings.readConcurrency} connections for ${settings.readSeconds} s over random places, before opening. Opening: students poll after a third of their estimate (1 s to --poll-max-ms), or follow their stream, and register at once with their admission; bots each keep one request in flight.`,
    CPU_COUNTED,
  ];

  const text = [
    formatTable(loadTable), '',
    ...targets.map((t) => `Target: ${t}`), '',
    formatTable(registerWindows), '',
    formatTable(memoryTable), '',
    formatTable(etaTable), '',
    ...checkLines, '',
    formatTable(cpuTable), '',
    ...notes,
  ].join('\n');

  const start = rush.openedAt;
  const sections: ReportSection[] = [
    {
      heading: 'Summary',
      html: [
        htmlTable(loadTable),
        ...targets.map((t) => paragraph(`Target: ${t}`, /: met$/.test(t) ? 'ok' : 'note')),
        htmlTable(registerWindows),
        htmlTable(memoryTable),
        htmlTable(etaTable),
        ...checkLines.map((line) => paragraph(line)),
        htmlTable(cpuTable),
        paragraph(verdict, violations.length === 0 ? 'ok' : 'fail'),
        ...(failures.length > 0 ? [`<ul>${failures.map((f) => `<li class="fail">${escapeHtml(f)}</li>`).join('')}</ul>`] : []),
        ...notes.map((n) => paragraph(n, 'note')),
      ].join('\n'),
    },
    {
      heading: 'The opening over time',
      html: lineChart({
        title: 'Places admitted and registrations answered since opening',
        series: [
          { label: 'admitted (queue_states.admitted_total)', points: rush.samples.map((s) => ({ x: s.at - start, y: s.admitted })) },
          { label: 'registrations answered', points: rush.samples.map((s) => ({ x: s.at - start, y: s.registered })) },
        ],
        yLabel: 'places',
        yUnit: 'places',
        xLabel: 'time since opening',
      }),
    },
    ...(streams.memory.length > 1 ? [{
      heading: 'Memory per stream',
      html: barChart({
        title: 'HTTP workers\' resident memory with the streams open',
        x: streams.memory.map((m) => m.streams),
        values: streams.memory.map((m) => Math.round((m.httpBytes / MIB) * 10) / 10),
        xAxis: { label: 'streams open', kind: 'number', unit: 'streams' },
        yLabel: 'resident memory',
        yUnit: 'MiB',
        label: 'HTTP workers RSS',
      }),
    }] : []),
  ];
  return {
    title: 'Registrar bench: queue',
    meta: [`Measured ${new Date().toISOString()} on ${describeMachine()}.`, 'The service, PostgreSQL and the bench share the cores.'],
    text,
    sections,
    failures,
    verdict,
  };
}
