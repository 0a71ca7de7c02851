// How soon the supervisor replaces a worker that died: at once the first time, then twice as
// late for each crash in a row, so a worker that cannot start (a bad setting, a database that
// refuses it) does not spin the machine. A worker that lived a while before dying was healthy:
// its slot starts over.

const RESTART_BASE_DELAY_MS = 100;
const RESTART_MAX_DELAY_MS = 30_000;
/** A worker that lived this long before dying counts as healthy: its slot's backoff resets. */
export const HEALTHY_UPTIME_MS = 10_000;

/** Crashes in a row of a slot, counting the one that just happened after `uptimeMs`. */
export function countCrashes(crashesBefore: number, uptimeMs: number): number {
  return uptimeMs >= HEALTHY_UPTIME_MS ? 1 : crashesBefore + 1;
}

/** The wait before the replacement of a slot that crashed `crashes` times in a row. */
export function restartDelayMs(crashes: number): number {
  return Math.min(RESTART_BASE_DELAY_MS * 2 ** (crashes - 1), RESTART_MAX_DELAY_MS);
}
