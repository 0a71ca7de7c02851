// Teardown for the bench and the tests: steps run once, last added first, each bounded by a
// timeout, whether the run succeeded, failed or was interrupted (Ctrl-C). A failed step is logged
// and the others still run.

export type Cleanup = {
  /** Registers an undo step; later steps run first. */
  add(label: string, step: () => Promise<void> | void): void;
  /** Runs every step once (idempotent: later callers wait for the same run, and steps added later). */
  run(): Promise<void>;
};

const STEP_TIMEOUT_MS = 90_000;

export function createCleanup(log: (line: string) => void, stepTimeoutMs = STEP_TIMEOUT_MS): Cleanup {
  const steps: { label: string; step: () => Promise<void> | void }[] = [];
  let running: Promise<void> | undefined;

  const runSteps = async () => {
    while (steps.length > 0) {
      const { label, step } = steps.pop()!;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), stepTimeoutMs);
      });
      try {
        const result = await Promise.race([Promise.resolve().then(step).then(() => 'done' as const), timedOut]);
        if (result === 'timeout') log(`cleanup: ${label} took over ${stepTimeoutMs} ms; moving on`);
      } catch (error) {
        log(`cleanup: ${label} failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    }
  };

  return {
    add(label, step) {
      steps.push({ label, step });
      // Registered after the cleanup began (something finished starting after a Ctrl-C): undo
      // it too, right after the steps already under way.
      if (running) running = running.then(runSteps);
    },
    run() {
      running ??= runSteps();
      return running;
    },
  };
}
