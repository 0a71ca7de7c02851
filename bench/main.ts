// Entry point of `npm run bench -- <scenario> [flags]`: parses flags, runs the scenario with a cleanup
// that always happens (also on Ctrl-C), prints tables and verdict, writes the report, sets the exit code.
import path from 'node:path';
import { type BenchDatabase, startBenchDatabase } from './bench-database.ts';
import { createCleanup } from '../test/support/cleanup.ts';
import { describeFlags, type FlagSpecs, parseFlags, UsageError } from './flags.ts';
import { renderPage } from './html.ts';
import { checkMachineIsQuiet } from './machine.ts';
import { writeReport } from './report-file.ts';
import type { RegisteredScenario, ScenarioContext } from './scenario.ts';
import { findScenario, SCENARIOS } from './scenarios.ts';
import { REPO_DIR } from '../test/support/service-process.ts';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

const commonFlags = {
  'report-dir': { type: 'string', description: 'where the HTML report is written', default: 'bench-report' },
  help: { type: 'boolean', description: 'show this help' },
} as const satisfies FlagSpecs;

function usage(): string {
  const lines = ['Usage: npm run bench -- <scenario> [flags]', '', 'Scenarios:'];
  for (const scenario of SCENARIOS) lines.push(`  ${scenario.name.padEnd(8)} ${scenario.summary}`);
  for (const scenario of SCENARIOS) {
    lines.push('', `Flags of ${scenario.name}:`, ...describeFlags({ ...scenario.flags, ...commonFlags }));
  }
  lines.push('', 'Each run starts its own embedded PostgreSQL, SMTP server and service (127.0.0.1 only) and removes them afterwards.');
  return lines.join('\n');
}

// On a terminal a progress line may be drawn in place (progress.ts): a log line clears it first.
const log = (line: string) => process.stderr.write(`${process.stderr.isTTY ? '\r\u001b[K' : ''}[bench] ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const scenario: RegisteredScenario | undefined = findScenario(name);
  if (!scenario) {
    process.stderr.write(`Unknown scenario "${name}"; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}.\n(npm run bench -- --help lists every flag)\n`);
    return EXIT_USAGE;
  }
  const specs = { ...scenario.flags, ...commonFlags };
  let flags: ReturnType<typeof parseFlags<typeof specs>>;
  try {
    flags = parseFlags(rest, specs);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n(npm run bench -- --help lists every flag)\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
  if (flags.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }

  const busy = await checkMachineIsQuiet();
  if (busy) log(`warning: ${busy}`);
  const cleanup = createCleanup(log);
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      log(`${signal} again: still cleaning up (every step is bounded)`);
      return;
    }
    interrupted = true;
    log(`${signal}: stopping the service and PostgreSQL, removing temporary files`);
    abort.abort();
    void cleanup.run();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let database: Promise<BenchDatabase> | undefined;
  const context: ScenarioContext = {
    cleanup,
    log,
    signal: abort.signal,
    database: () => (database ??= startBenchDatabase(cleanup, log)),
  };
  try {
    const report = await scenario.run(flags, context);
    await cleanup.run();
    process.stdout.write(`\n${report.text}\n\n`);
    const file = await writeReport(path.resolve(REPO_DIR, flags['report-dir']), scenario.name, await renderPage(report));
    for (const failure of report.failures) process.stdout.write(`FAILED: ${failure}\n`);
    process.stdout.write(`${report.verdict}\n`);
    process.stdout.write(`Report: ${file}\n`);
    if (report.failures.length > 0) {
      process.stderr.write(`\nbench ${scenario.name} FAILED: ${report.failures.length} problem(s), listed above.\n`);
      return EXIT_FAILED;
    }
    return 0;
  } catch (error) {
    await cleanup.run();
    // Settings that only make sense together are checked by the scenario, before it starts anything.
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n(npm run bench -- --help lists every flag)\n`);
      return EXIT_USAGE;
    }
    if (interrupted) {
      process.stderr.write(`bench ${scenario.name}: interrupted; everything it started is stopped and removed.\n`);
      return EXIT_INTERRUPTED;
    }
    process.stderr.write(`bench ${scenario.name} FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_FAILED;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Everything this process started is stopped; a handle left open must not keep it alive.
setTimeout(() => process.exit(), 2_000).unref();
