// Owns the command-line flags: their declaration per scenario, parsing with node:util parseArgs,
// validation of whole numbers within bounds, and the --help text.
import { parseArgs } from 'node:util';

export type FlagSpec =
  | { type: 'integer'; description: string; default: number; min: number; max: number }
  | { type: 'string'; description: string; default: string }
  | { type: 'boolean'; description: string };

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** Under this key, the names of the flags given on the command line (the rest took their default). */
export const GIVEN_FLAGS: unique symbol = Symbol('flags given');

/** Distributes over a union: the value of any FlagSpec is number | boolean | string. */
type FlagValue<F extends FlagSpec> = F extends { type: 'integer' } ? number : F extends { type: 'boolean' } ? boolean : string;

export type FlagValues<S extends FlagSpecs> = { [K in keyof S]: FlagValue<S[K]> };

/** The values, and which flags the command line gave (a preset may decide the others). */
export type ParsedFlags<S extends FlagSpecs> = FlagValues<S> & { readonly [GIVEN_FLAGS]: ReadonlySet<string> };

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses `args` (the words after the scenario name) against `specs`; unknown flags are errors. */
export function parseFlags<S extends FlagSpecs>(args: string[], specs: S): ParsedFlags<S> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const values: Record<string, number | string | boolean> = {};
  const given = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) {
    const raw = parsed.values[name];
    if (raw !== undefined) given.add(name);
    if (spec.type === 'boolean') {
      values[name] = raw === true;
    } else if (spec.type === 'string') {
      values[name] = typeof raw === 'string' ? raw : spec.default;
    } else {
      values[name] = typeof raw === 'string' ? readInteger(name, raw, spec.min, spec.max) : spec.default;
    }
  }
  return { ...values, [GIVEN_FLAGS]: given } as ParsedFlags<S>;
}

function readInteger(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
}

/** One line per flag: `--name <n>  description (default d, min..max)`. */
export function describeFlags(specs: FlagSpecs): string[] {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const usage = spec.type === 'boolean' ? `--${name}` : `--${name} <${spec.type === 'integer' ? 'n' : 'text'}>`;
    const detail = spec.type === 'integer'
      ? ` (default ${spec.default}; ${spec.min}..${spec.max})`
      : spec.type === 'string' ? ` (default ${spec.default})` : '';
    return [usage, `${spec.description}${detail}`] as const;
  });
  const width = Math.max(0, ...rows.map(([usage]) => usage.length));
  return rows.map(([usage, text]) => `  ${usage.padEnd(width)}  ${text}`);
}
