// Owns the progress line of a long bench phase (done/total, elapsed, an estimate of what is
// left), on stderr: rewritten in place on a terminal (\r), an occasional plain line otherwise
// (a log file or a pipe), and a last line when the phase ends.

export type ProgressStream = { write(text: string): unknown; isTTY?: boolean };

export type Progress = {
  /** `done` of the total so far (a count, never more than the total). */
  update(done: number): void;
  /** The phase is over: its last line, with `note` (e.g. "3 of 100 emails missing") if given. */
  finish(note?: string): void;
};

export type ProgressOptions = {
  stream?: ProgressStream;
  /** What is counted, plural: "registrations", "emails", "rows". */
  unit: string;
  /** Not a terminal: a line at most this often. */
  lineEveryMs?: number;
  /** A terminal: the line rewritten at most this often. */
  redrawEveryMs?: number;
  now?: () => number;
};

const LINE_EVERY_MS = 5_000;
const REDRAW_EVERY_MS = 250;

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
}

/**
 * What is left at the pace so far: the elapsed time per item times the items left. Unknown
 * (undefined) before the first item or while the elapsed time is too short to say.
 */
export function estimateRemainingMs(done: number, total: number, elapsedMs: number): number | undefined {
  if (done <= 0 || total <= 0 || elapsedMs <= 0) return undefined;
  if (done >= total) return 0;
  return (elapsedMs / done) * (total - done);
}

/** "seed model 1: 37/100 registrations (37%), 12.3 s elapsed, about 21 s left". */
export function formatProgress(options: { label: string; done: number; total: number; unit: string; elapsedMs: number; finished?: boolean; note?: string }): string {
  const { label, total, unit, elapsedMs } = options;
  const done = Math.min(Math.max(0, options.done), Math.max(0, total));
  const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
  const head = `${label}: ${done}/${total} ${unit} (${percent}%)`;
  const note = options.note ? `; ${options.note}` : '';
  if (options.finished) return `${head}, done in ${formatDuration(elapsedMs)}${note}`;
  const left = estimateRemainingMs(done, total, elapsedMs);
  return `${head}, ${formatDuration(elapsedMs)} elapsed, ${left === undefined ? 'estimate after the first' : `about ${formatDuration(left)} left`}${note}`;
}

/**
 * Starts the progress of one phase of `total` items. A timer writes the line (so the elapsed
 * time moves while nothing finishes); `update` only records the count.
 */
export function startProgress(label: string, total: number, options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const tty = stream.isTTY === true;
  const startedAt = now();
  let done = 0;
  let finished = false;
  const line = (extra: { finished?: boolean; note?: string } = {}) => formatProgress({ label, done, total, unit: options.unit, elapsedMs: now() - startedAt, ...extra });
  const timer = setInterval(() => {
    stream.write(tty ? `\r${line()}\u001b[K` : `[bench] ${line()}\n`);
  }, tty ? (options.redrawEveryMs ?? REDRAW_EVERY_MS) : (options.lineEveryMs ?? LINE_EVERY_MS));
  timer.unref();
  return {
    update(count) {
      if (!finished) done = count;
    },
    finish(note) {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      const last = line({ finished: true, ...(note ? { note } : {}) });
      stream.write(tty ? `\r${last}\u001b[K\n` : `[bench] ${last}\n`);
    },
  };
}
