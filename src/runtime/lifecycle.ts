// Owns the process's signal handlers: the first SIGINT/SIGTERM starts a graceful stop, a second
// one (after the repeat window) forces the exit. Cleanups run in reverse order of registration,
// each bounded by a timeout (past it, the cleanup's own force hook runs); start-up steps give up
// as soon as a stop begins.

export type Cleanup = { name: string; run: () => Promise<void>; force: (() => void) | undefined };

/**
 * Signals this soon after the first are the same stop, not a request to force it. One Ctrl-C on
 * a terminal reaches the supervisor twice within a millisecond: the kernel sends SIGINT to the
 * whole foreground process group, and npm forwards its own SIGINT to its child as well.
 */
export const REPEAT_WINDOW_MS = 1_000;

/** What a start-up step rejects with once a stop has begun: the stop undoes what had started. */
export class StopRequested extends Error {
  override name = 'StopRequested';
  constructor() {
    super('stopped during start-up');
  }
}

export class Lifecycle {
  private readonly cleanups: Cleanup[] = [];
  private readonly forced: Array<() => void> = [];
  private readonly controller = new AbortController();
  private stopping: Promise<void> | undefined;
  private readonly log: (message: string) => void;

  constructor(log: (message: string) => void) {
    this.log = log;
  }

  /**
   * Registers something to undo on stop; later registrations are undone first. `force` runs if
   * `run` outlasts the stop's timeout: the stop moves on and the process exits after it, so
   * whatever `run` was still waiting for (a PostgreSQL still starting) must not outlive it.
   */
  add(name: string, run: () => Promise<void>, force?: () => void): void {
    this.cleanups.push({ name, run, force });
  }

  /**
   * Registers what a forced exit does at once, synchronously, before process.exit (kill the
   * workers, ask PostgreSQL for an immediate shutdown): whatever must not outlive this process.
   */
  onForce(run: () => void): void {
    this.forced.push(run);
  }

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Idempotent: every caller waits for the same stop. */
  stop(timeoutMs: number): Promise<void> {
    if (this.stopping === undefined) {
      this.stopping = this.runCleanups(timeoutMs);
      this.controller.abort();
    }
    return this.stopping;
  }

  /**
   * Settles as `step` does, or rejects with StopRequested as soon as a stop begins (at once if
   * it has begun). Start-up awaits each step through this, so a signal during start-up never
   * waits for the rest of it, and nothing new starts after the stop's cleanups ran.
   */
  async untilStopped<T>(step: Promise<T>): Promise<T> {
    step.catch(() => undefined); // a step abandoned by a stop may still fail: that is expected
    const signal = this.controller.signal;
    if (signal.aborted) throw new StopRequested();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new StopRequested());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([step, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }

  private async runCleanups(timeoutMs: number): Promise<void> {
    for (const cleanup of this.cleanups.toReversed()) {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const result = await Promise.race([cleanup.run().then(() => 'done' as const), timedOut]);
        if (result === 'timeout') {
          this.log(`stopping ${cleanup.name} took over ${timeoutMs} ms; ${cleanup.force ? 'forcing it and ' : ''}moving on`);
          cleanup.force?.();
        }
      } catch (error) {
        this.log(`stopping ${cleanup.name} failed after ${Date.now() - started} ms: ${String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /**
   * SIGINT/SIGTERM stop gracefully and exit 0. Repeats within REPEAT_WINDOW_MS of the first are
   * the same stop; a later one forces: the onForce hooks run, and the process exits with 130.
   */
  handleSignals(timeoutMs: number, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): void {
    let firstAt: number | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (firstAt !== undefined && Date.now() - firstAt < REPEAT_WINDOW_MS) return;
      if (firstAt === undefined && this.isStopping) {
        // A stop without a signal (a failed start) is under way: this signal is the first.
        firstAt = Date.now();
        this.log(`${signal}: stopping already (again to force)`);
        return;
      }
      if (firstAt !== undefined) {
        this.log(`${signal} again: exiting now, without waiting for the stop`);
        for (const run of this.forced) {
          try {
            run();
          } catch (error) {
            this.log(`forcing the stop: ${String(error)}`);
          }
        }
        process.exit(130);
      }
      firstAt = Date.now();
      this.log(`${signal}: stopping gracefully (again to force)`);
      void this.stop(timeoutMs).then(() => {
        this.log('stopped');
        process.exit(0);
      });
    };
    for (const signal of signals) process.on(signal, onSignal);
  }
}
