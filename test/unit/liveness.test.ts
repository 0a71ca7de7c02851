// The supervisor's liveness bookkeeping on a clock and process states of our own: when a silent
// worker is named, the start-up grace, the warning half-way, the longer bound for a worker that
// is runnable or using CPU (starved, not stuck), and gaps in the supervisor's own checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUSY_BOUND_FACTOR, HEARTBEAT_INTERVAL_MS, LivenessMonitor, type ProcessSample, STARTUP_GRACE_MS, type Verdict } from '../../src/runtime/liveness.ts';

const TIMEOUT_MS = 10_000;

/** No process information (as off Linux): the plain bound applies. */
const unknown = (): ProcessSample | undefined => undefined;

/** Checks every `stepMs` from `from` to `to`, as the supervisor's timer does; the verdicts of `kind`. */
function checkEvery(monitor: LivenessMonitor, from: number, to: number, onTick: (now: number) => void = () => {}, kind: Verdict['verdict'] = 'kill', stepMs = HEARTBEAT_INTERVAL_MS): Array<Verdict & { at: number }> {
  const named: Array<Verdict & { at: number }> = [];
  for (let now = from; now <= to; now += stepMs) {
    onTick(now);
    for (const entry of monitor.check(now)) if (entry.verdict === kind) named.push({ ...entry, at: now });
  }
  return named;
}

test('a worker heard from keeps living; one silent past the bound is named once', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS, unknown);
  monitor.watch(1, 0);
  monitor.watch(2, 0);
  // Both report until 5 s; then worker 2 goes silent.
  const named = checkEvery(monitor, 0, 60_000, (now) => {
    monitor.heard(1, now);
    if (now <= 5_000) monitor.heard(2, now);
  });
  assert.deepEqual(named.map((n) => n.pid), [2]);
  assert.ok(named[0]!.silentMs > TIMEOUT_MS && named[0]!.silentMs <= TIMEOUT_MS + HEARTBEAT_INTERVAL_MS, JSON.stringify(named));
});

test('before its first message a worker has the start-up grace on top of the bound', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS, unknown);
  monitor.watch(7, 0);
  const named = checkEvery(monitor, 0, TIMEOUT_MS + STARTUP_GRACE_MS + 5_000);
  assert.deepEqual(named.map((n) => n.pid), [7]);
  assert.ok(named[0]!.at > TIMEOUT_MS + STARTUP_GRACE_MS);
});

test('a gap in the supervisor\'s own checks (it was suspended) is forgiven', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS, unknown);
  monitor.watch(3, 0);
  monitor.heard(3, 0);
  assert.deepEqual(monitor.check(1_000), []);
  // The whole machine slept for a minute: the next check comes 60 s late.
  assert.deepEqual(monitor.check(61_000), []);
  // The worker's queued heartbeats arrive now; it is alive.
  monitor.heard(3, 61_100);
  assert.deepEqual(checkEvery(monitor, 62_000, 70_000, (now) => monitor.heard(3, now)), []);
});

test('WORKER_LIVENESS_TIMEOUT_MS=0 never names anyone; forgotten workers are not named', () => {
  const off = new LivenessMonitor(0, unknown);
  off.watch(4, 0);
  assert.deepEqual(checkEvery(off, 0, 120_000), []);
  const monitor = new LivenessMonitor(TIMEOUT_MS, unknown);
  monitor.watch(5, 0);
  monitor.forget(5);
  assert.deepEqual(checkEvery(monitor, 0, 120_000), []);
});

test('a silent worker is warned about once at half the bound, before it is killed', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS, unknown);
  monitor.watch(8, 0);
  monitor.heard(8, 0);
  const all: Verdict[] = [];
  for (let now = 1_000; now <= 20_000; now += HEARTBEAT_INTERVAL_MS) all.push(...monitor.check(now));
  assert.deepEqual(all.map((v) => v.verdict), ['warn', 'kill']);
  assert.ok(all[0]!.silentMs > TIMEOUT_MS / 2 && all[0]!.silentMs < TIMEOUT_MS, JSON.stringify(all));
});

test('a runnable (CPU-starved) worker gets the longer bound; a stopped one the plain bound', () => {
  const states = new Map<number, ProcessSample>([[10, { state: 'R', cpuTicks: 5 }], [11, { state: 'T', cpuTicks: 5 }]]);
  const monitor = new LivenessMonitor(TIMEOUT_MS, (pid) => states.get(pid));
  for (const pid of states.keys()) {
    monitor.watch(pid, 0);
    monitor.heard(pid, 0);
  }
  const named = checkEvery(monitor, 1_000, BUSY_BOUND_FACTOR * TIMEOUT_MS + 5_000);
  assert.deepEqual(named.map((n) => [n.pid, n.state]), [[11, 'T'], [10, 'R']]);
  assert.ok(named[0]!.at <= TIMEOUT_MS + HEARTBEAT_INTERVAL_MS, JSON.stringify(named));
  assert.ok(named[1]!.at > BUSY_BOUND_FACTOR * TIMEOUT_MS, 'the runnable one is still killed in the end (an endless loop is runnable too)');
});

test('a sleeping worker whose CPU time advances gets the longer bound; one without progress does not', () => {
  let ticks = 0;
  const monitor = new LivenessMonitor(TIMEOUT_MS, (pid) => (pid === 12 ? { state: 'S', cpuTicks: ticks } : { state: 'S', cpuTicks: 7 }));
  for (const pid of [12, 13]) {
    monitor.watch(pid, 0);
    monitor.heard(pid, 0);
  }
  const named = checkEvery(monitor, 1_000, 3 * TIMEOUT_MS, () => (ticks += 3));
  assert.deepEqual(named.map((n) => n.pid), [13], 'the worker using CPU lives on past the plain bound');
});

test('checks late again and again (a supervisor under sustained load) still find a silent worker', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS, unknown);
  monitor.watch(14, 0);
  monitor.heard(14, 0);
  monitor.watch(15, 0);
  // Every check 2.5 s after the one before: each is late; only the lateness is forgiven.
  const named = checkEvery(monitor, 0, 120_000, (now) => monitor.heard(15, now), 'kill', 2_500);
  assert.deepEqual(named.map((n) => n.pid), [14]);
});
