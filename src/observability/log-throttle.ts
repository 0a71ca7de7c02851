// Owns throttled logging: a line a rush can repeat thousands of times a second (every request
// refused while the database's disk is full) is written the first time, then at most once per
// interval per key, and that line says how many were left out since the one before.

export type LogThrottle = {
  /**
   * undefined: leave this line out (it is counted); a number: write it, with this many left out
   * since the last line of this key. Keys are a small fixed set (error codes), never user input.
   */
  admit(key: string, now?: number): number | undefined;
};

export function createLogThrottle(intervalMs: number): LogThrottle {
  const keys = new Map<string, { loggedAt: number; suppressed: number }>();
  return {
    admit(key, now = Date.now()) {
      const state = keys.get(key);
      if (state === undefined) {
        keys.set(key, { loggedAt: now, suppressed: 0 });
        return 0;
      }
      if (now - state.loggedAt < intervalMs) {
        state.suppressed += 1;
        return undefined;
      }
      const suppressed = state.suppressed;
      state.loggedAt = now;
      state.suppressed = 0;
      return suppressed;
    },
  };
}
