// Owns the `emails` scenario: N committed registrations' emails drained by the service's job worker,
// to the built-in mailbox and to a real SMTP sink, and the rate. The emails are queued as a group
// commit queues them (src/db/functions/record-events.sql): registrations and their events written
// set-based, and one send_email job per batch of events whose payload lists {eventId,
// manageToken}, all in one transaction, so the job worker sees them all at its commit. The clock
// runs from that commit to the moment the service has recorded the last email sent.
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { deliveryStats } from '../src/db/queries/jobs.queries.ts';
import { CPU_COUNTED, type CpuWindow, startCpuStopwatch } from './cpu-window.ts';
import { UsageError } from './flags.ts';
import { htmlTable, paragraph } from './html.ts';
import { describeMachine } from './machine.ts';
import { startProgress } from './progress.ts';
import { defineScenario, type ScenarioContext } from './scenario.ts';
import { serviceFlags } from './service-flags.ts';
import { withServiceRun } from './service-run.ts';
import { startSmtpSink, type SmtpSink } from './smtp-sink.ts';
import { formatMs } from './stats.ts';
import { formatTable, type TextTable } from './text-table.ts';

const SINKS = ['mailbox', 'smtp'] as const;
type Sink = (typeof SINKS)[number];

const emailsFlags = {
  count: { type: 'integer', description: 'emails queued and drained per sink', default: 100_000, min: 1, max: 10_000_000 },
  to: { type: 'string', description: 'where they go: mailbox, smtp, or both (one after the other, each on a fresh service and database)', default: 'both' },
  batch: { type: 'integer', description: 'emails per send_email job (a group commit\'s batch; an import\'s is 1000)', default: 1_000, min: 1, max: 10_000 },
  'timeout-s': { type: 'integer', description: 'give up on a drain after this long', default: 1_800, min: 10, max: 86_400 },
  workers: { ...serviceFlags.workers, default: 1 },
  'email-concurrency': serviceFlags['email-concurrency'],
} as const;

type DrainResult = {
  sink: Sink;
  count: number;
  queueMs: number;
  drainMs: number;
  sent: number;
  failed: number;
  /** Mailbox rows, or messages the SMTP sink accepted, and their distinct Message-IDs. */
  delivered: number;
  distinct: number;
  connections: number | undefined;
  cpu: CpuWindow;
  load: [number, number];
};

function chooseSinks(to: string): Sink[] {
  if (to === 'both') return [...SINKS];
  if ((SINKS as readonly string[]).includes(to)) return [to as Sink];
  throw new UsageError(`--to takes mailbox, smtp or both; got "${to}"`);
}

/** Queues `count` registrations' emails in one transaction; resolves at its commit. */
async function queueEmails(databaseUrl: string, count: number, batch: number): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql.begin(async (tx) => {
      await tx`INSERT INTO courses (id, title, capacity, enrolled) VALUES ('mail', 'The mail course', ${count}, ${count})`;
      await tx`
        WITH registered AS (
          INSERT INTO registrations (course_id, name, email, email_key, status)
          SELECT 'mail', 'Student ' || g, 'student' || g || '@example.org', 'student' || g || '@example.org', 'enrolled'
          FROM generate_series(1, ${count}::int) g
          RETURNING id),
        events AS (
          INSERT INTO registration_events (registration_id, course_id, kind, actor, reason)
          SELECT id, 'mail', 'enrolled', 'student', 'registered' FROM registered
          RETURNING id)
        SELECT count(*) FROM (
          SELECT graphile_worker.add_job('send_email', json_agg(json_build_object('eventId', id, 'manageToken', md5(id::text)) ORDER BY id), max_attempts => 25)
          FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / ${batch}::int AS job FROM events) e
          GROUP BY job) jobs`;
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function drain(sink: Sink, flags: { count: number; batch: number; 'timeout-s': number; workers: number; 'email-concurrency': number }, context: ScenarioContext): Promise<DrainResult> {
  const smtp: SmtpSink | undefined = sink === 'smtp' ? await startSmtpSink() : undefined;
  if (smtp) context.cleanup.add('stop the SMTP sink', () => smtp.stop());
  const setup = {
    name: `emails_${sink}`,
    workers: flags.workers,
    emailConcurrency: flags['email-concurrency'],
    emailDelayMs: 0,
    // No SMTP_URL: the built-in mailbox.
    environment: { SMTP_URL: smtp?.url ?? '' },
  };
  try {
    return await withServiceRun(context, setup, async (run) => {
      const sql = postgres(run.databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        context.log(`emails to the ${sink}: queueing ${flags.count} in jobs of ${flags.batch}`);
        const queueStart = performance.now();
        const stopwatch = await startCpuStopwatch(run.cpuRoots);
        const loadBefore = loadavg()[0]!;
        await queueEmails(run.databaseUrl, flags.count, flags.batch);
        const committed = performance.now();
        const progress = startProgress(`emails to the ${sink}`, flags.count, { unit: 'emails' });
        let done = 0;
        const deadline = committed + flags['timeout-s'] * 1000;
        while (performance.now() < deadline) {
          context.signal.throwIfAborted();
          const stats = await deliveryStats(sql);
          done = stats.emails_sent + stats.emails_failed;
          progress.update(Math.min(done, flags.count));
          if (done >= flags.count) break;
          await sleep(250);
        }
        const drained = performance.now();
        progress.finish(done < flags.count ? `${flags.count - done} not drained in ${flags['timeout-s']} s` : undefined);
        const cpu = await stopwatch.read();
        const loadAfter = loadavg()[0]!;
        const [outcomes] = await sql<{ sent: number; failed: number; mailbox: number; mailbox_distinct: number }[]>`
          SELECT (SELECT count(*)::int FROM email_deliveries WHERE status = 'sent') AS sent,
                 (SELECT count(*)::int FROM email_deliveries WHERE status = 'failed') AS failed,
                 (SELECT count(*)::int FROM mailbox) AS mailbox,
                 (SELECT count(DISTINCT message_id)::int FROM mailbox) AS mailbox_distinct`;
        return {
          sink,
          count: flags.count,
          queueMs: committed - queueStart,
          drainMs: drained - committed,
          sent: outcomes!.sent,
          failed: outcomes!.failed,
          delivered: smtp ? smtp.accepted : outcomes!.mailbox,
          distinct: smtp ? smtp.distinct : outcomes!.mailbox_distinct,
          connections: smtp?.connections,
          cpu,
          load: [loadBefore, loadAfter],
        };
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  } finally {
    await smtp?.stop();
  }
}

function checks(result: DrainResult): string[] {
  const failures: string[] = [];
  if (result.sent !== result.count) failures.push(`${result.sink}: ${result.sent} of ${result.count} emails recorded sent (${result.failed} failed)`);
  if (result.distinct !== result.count) failures.push(`${result.sink}: ${result.distinct} distinct emails delivered, ${result.count} queued`);
  if (result.delivered !== result.distinct) failures.push(`${result.sink}: ${result.delivered - result.distinct} emails delivered twice`);
  return failures;
}

export const emailsScenario = defineScenario({
  name: 'emails',
  summary: 'N committed registrations\' emails drained to the built-in mailbox and to a real SMTP sink: the rate',
  flags: emailsFlags,
  async run(flags, context) {
    const sinks = chooseSinks(flags.to);
    const results: DrainResult[] = [];
    for (const sink of sinks) results.push(await drain(sink, flags, context));
    const cpu = (r: DrainResult, tree: string) => (r.cpu.service?.byTree[tree] === undefined ? 'n/a' : formatMs(r.cpu.service.byTree[tree]!));
    const table: TextTable = {
      title: `emails: ${flags.count} per sink in jobs of ${flags.batch}, EMAIL_CONCURRENCY ${flags['email-concurrency']}`,
      headers: ['sink', 'queued in', 'drained in', 'rate', 'sent', 'delivered', 'distinct', 'SMTP connections', 'CPU service', 'CPU postgres', 'CPU bench', 'CPU other', 'load 1 min before → after'],
      rows: results.map((r) => [
        r.sink,
        formatMs(r.queueMs),
        formatMs(r.drainMs),
        `${Math.round(r.count / (r.drainMs / 1000)).toLocaleString('en-US')}/s`,
        String(r.sent),
        String(r.delivered),
        String(r.distinct),
        r.connections === undefined ? '-' : String(r.connections),
        cpu(r, 'service'),
        cpu(r, 'postgres'),
        formatMs(r.cpu.benchMs),
        r.cpu.otherMs === undefined ? 'n/a' : formatMs(r.cpu.otherMs),
        `${r.load[0].toFixed(2)} → ${r.load[1].toFixed(2)}`,
      ]),
    };
    const note = `The rate is emails over the time from the queueing transaction's commit to the last email recorded sent. ${CPU_COUNTED}`;
    const failures = results.flatMap(checks);
    return {
      title: 'Registrar bench: emails',
      meta: [describeMachine(), `${flags.count} emails per sink, jobs of ${flags.batch}, ${flags.workers} HTTP workers, EMAIL_CONCURRENCY ${flags['email-concurrency']}`],
      text: `${formatTable(table)}\n${note}`,
      sections: [{ heading: 'Drain rate', html: htmlTable(table) + paragraph(note) }],
      failures,
      verdict: failures.length === 0 ? 'Emails: every one recorded sent, delivered once' : 'Emails: some missing or delivered twice',
    };
  },
});
