// Owns the rush's preset cases (--hot, --hot-full, --spread): the settings each stands for, the
// target its figures are held against (informational: machines differ), and the resolution of
// the flags over a preset, where a flag given on the command line always wins.
import { GIVEN_FLAGS, UsageError } from './flags.ts';
import { formatMs } from './stats.ts';

/** The flags a preset sets. */
export const PRESET_FLAGS = ['students', 'courses', 'concurrency', 'hot-capacity', 'hot-waitlist', 'hot-share', 'duplicates'] as const;
type PresetFlag = (typeof PRESET_FLAGS)[number];

/** A hot course with a seat for every student of the run, whatever --students says. */
const ROOM_FOR_EVERYONE = 'room for everyone';

export type RushTarget = {
  /** What is counted per second of the rush: created registrations (201), or answers of any kind. */
  counts: 'created' | 'answers';
  minPerSecond: number;
  maxP99Ms?: number;
};

export type RushCase = {
  name: 'hot' | 'hot-full' | 'spread';
  summary: string;
  preset: Readonly<Record<Exclude<PresetFlag, 'hot-capacity'>, number> & { 'hot-capacity': number | typeof ROOM_FOR_EVERYONE }>;
  target: RushTarget;
  /** After the rush: cancels and capacity raises on the full hot course, each place offered in time. */
  checksFreedSlots: boolean;
};

export const RUSH_CASES: readonly RushCase[] = [
  {
    name: 'hot',
    summary: 'one course with a seat for everyone: 20,000 students at concurrency 256, all created',
    preset: { students: 20_000, courses: 1, concurrency: 256, 'hot-capacity': ROOM_FOR_EVERYONE, 'hot-waitlist': 0, 'hot-share': 100, duplicates: 0 },
    target: { counts: 'created', minPerSecond: 3_000, maxP99Ms: 250 },
    checksFreedSlots: false,
  },
  {
    name: 'hot-full',
    summary: 'one full course (100 seats, no waitlist): 20,000 students at concurrency 256, nearly all refused; then the freed-slot check',
    preset: { students: 20_000, courses: 1, concurrency: 256, 'hot-capacity': 100, 'hot-waitlist': 0, 'hot-share': 100, duplicates: 0 },
    target: { counts: 'answers', minPerSecond: 8_000 },
    checksFreedSlots: true,
  },
  {
    name: 'spread',
    summary: '100 courses, each with room for everyone who wants it: 20,000 students at concurrency 64, all created',
    // hot-share 1: the hot course gets the same 1% as each of the 99 others.
    preset: { students: 20_000, courses: 100, concurrency: 64, 'hot-capacity': ROOM_FOR_EVERYONE, 'hot-waitlist': 0, 'hot-share': 1, duplicates: 0 },
    target: { counts: 'created', minPerSecond: 3_600, maxP99Ms: 100 },
    checksFreedSlots: false,
  },
];

export type PresetValues = Record<PresetFlag, number>;

type RushFlagValues = PresetValues & Record<RushCase['name'], boolean> & { readonly [GIVEN_FLAGS]: ReadonlySet<string> };

/** The case chosen (at most one) and the values of its flags: given on the command line, else the preset's, else the defaults. */
export function resolveRushCase(flags: RushFlagValues): { rushCase: RushCase | undefined; values: PresetValues; overridden: string[] } {
  const chosen = RUSH_CASES.filter((c) => flags[c.name]);
  if (chosen.length > 1) throw new UsageError(`choose one case: ${chosen.map((c) => `--${c.name}`).join(', ')} were given together`);
  const rushCase = chosen[0];
  const given = flags[GIVEN_FLAGS];
  const pick = (name: PresetFlag) => (rushCase === undefined || given.has(name) ? flags[name] : rushCase.preset[name]);
  const values = Object.fromEntries(PRESET_FLAGS.map((name) => [name, pick(name)])) as Record<PresetFlag, number | typeof ROOM_FOR_EVERYONE>;
  const resolved = { ...values, 'hot-capacity': values['hot-capacity'] === ROOM_FOR_EVERYONE ? values.students : values['hot-capacity'] } as PresetValues;
  if (resolved.courses === 1 && resolved['hot-share'] !== 100) {
    throw new UsageError(`with --courses 1 every student wants the hot course: --hot-share must be 100 (it is ${resolved['hot-share']})`);
  }
  if (rushCase?.checksFreedSlots && resolved['hot-capacity'] < 1) {
    throw new UsageError(`--${rushCase.name} cancels registrations of the hot course: --hot-capacity must be at least 1`);
  }
  const overridden = rushCase === undefined ? [] : PRESET_FLAGS.filter((name) => given.has(name)).map((name) => `--${name} ${resolved[name]}`);
  return { rushCase, values: resolved, overridden };
}

export function describeTarget(target: RushTarget): string {
  const rate = `>= ${target.minPerSecond.toLocaleString('en-US')} ${target.counts === 'created' ? 'created registrations' : 'answers'}/s`;
  return target.maxP99Ms === undefined ? rate : `${rate}, p99 < ${formatMs(target.maxP99Ms)}`;
}

/** The figures against the target: "3,412 created/s, p99 212 ms: met". */
export function judgeTarget(target: RushTarget, figures: { created: number; answers: number; durationMs: number; p99Ms: number }): { met: boolean; text: string } {
  const count = target.counts === 'created' ? figures.created : figures.answers;
  const perSecond = figures.durationMs > 0 ? (count * 1000) / figures.durationMs : Number.NaN;
  const rateMet = perSecond >= target.minPerSecond;
  const latencyMet = target.maxP99Ms === undefined || figures.p99Ms < target.maxP99Ms;
  const measured = `${Math.round(perSecond).toLocaleString('en-US')} ${target.counts}/s${target.maxP99Ms === undefined ? '' : `, p99 ${formatMs(figures.p99Ms)}`}`;
  return { met: rateMet && latencyMet, text: `${measured}: ${rateMet && latencyMet ? 'met' : 'missed'}` };
}
