// Owns the process's signal handlers: the first SIGINT/SIGTERM starts a graceful stop, a second
// one forces the exit. Cleanups run in reverse order of registration, each bounded by a timeout.

export type Cleanup = { name: string; run: () => Promise<void> };

export class Lifecycle {
  private readonly cleanups: Cleanup[] = [];
  private stopping: Promise<void> | undefined;
  private readonly log: (message: string) => void;

  constructor(log: (message: string) => void) {
    this.log = log;
  }

  /** Registers something to undo on stop; later registrations are undone first. */
  add(name: string, run: () => Promise<void>): void {
    this.cleanups.push({ name, run });
  }

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Idempotent: every caller waits for the same stop. */
  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= this.runCleanups(timeoutMs);
    return this.stopping;
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
        if (result === 'timeout') this.log(`stopping ${cleanup.name} took over ${timeoutMs} ms; moving on`);
      } catch (error) {
        this.log(`stopping ${cleanup.name} failed after ${Date.now() - started} ms: ${String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** SIGINT/SIGTERM stop gracefully and exit 0; a second signal exits at once with 130. */
  handleSignals(timeoutMs: number, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.isStopping) {
        this.log(`${signal} again: exiting now`);
        process.exit(130);
      }
      this.log(`${signal}: stopping gracefully (again to force)`);
      void this.stop(timeoutMs).then(() => process.exit(0));
    };
    for (const signal of signals) process.on(signal, onSignal);
  }
}
