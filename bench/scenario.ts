// Owns what a scenario is: a name, a one-line summary, its flags, and a run that measures and
// returns its report (tables for stdout, sections for the HTML page, failures that fail the run).
import type { BenchDatabase } from './bench-database.ts';
import type { Cleanup } from '../test/support/cleanup.ts';
import type { FlagSpecs, ParsedFlags } from './flags.ts';
import type { ReportSection } from './html.ts';

export type ScenarioContext = {
  cleanup: Cleanup;
  log: (line: string) => void;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  /** The bench's embedded PostgreSQL, started on first use, once per run. */
  database(): Promise<BenchDatabase>;
};

export type ScenarioReport = {
  /** The page's title and the lines under it (machine, settings). */
  title: string;
  meta: string[];
  /** Printed to stdout as is: the tables. */
  text: string;
  sections: ReportSection[];
  /** Non-empty: the run failed (an invariant broken, answers missing); each is printed. */
  failures: string[];
  /** Printed last, e.g. "Invariants: passed (11 checks ...)". */
  verdict: string;
};

export type Scenario<S extends FlagSpecs> = {
  name: string;
  summary: string;
  flags: S;
  run(flags: ParsedFlags<S>, context: ScenarioContext): Promise<ScenarioReport>;
};

export type RegisteredScenario = {
  name: string;
  summary: string;
  flags: FlagSpecs;
  run(flags: ParsedFlags<FlagSpecs>, context: ScenarioContext): Promise<ScenarioReport>;
};

/** Erases a scenario's own flag types for the registry; main parses with the same specs. */
export function defineScenario<S extends FlagSpecs>(scenario: Scenario<S>): RegisteredScenario {
  return scenario as unknown as RegisteredScenario;
}
