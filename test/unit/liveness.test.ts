// The supervisor's liveness bookkeeping on a clock of our own: when a silent worker is named,
// the start-up grace, and no verdict across a gap in which the supervisor itself did not run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEARTBEAT_INTERVAL_MS, LivenessMonitor, STARTUP_GRACE_MS } from '../../src/runtime/liveness.ts';

const TIMEOUT_MS = 10_000;

/** Checks once a heartbeat interval from `from` to `to`, as the supervisor's timer does. */
function checkEvery(monitor: LivenessMonitor, from: number, to: number, onTick: (now: number) => void = () => {}): Array<{ pid: number; silentMs: number; at: number }> {
  const named: Array<{ pid: number; silentMs: number; at: number }> = [];
  for (let now = from; now <= to; now += HEARTBEAT_INTERVAL_MS) {
    onTick(now);
    for (const entry of monitor.check(now)) named.push({ ...entry, at: now });
  }
  return named;
}

test('a worker heard from keeps living; one silent past the bound is named once', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS);
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
  const monitor = new LivenessMonitor(TIMEOUT_MS);
  monitor.watch(7, 0);
  const named = checkEvery(monitor, 0, TIMEOUT_MS + STARTUP_GRACE_MS + 5_000);
  assert.deepEqual(named.map((n) => n.pid), [7]);
  assert.ok(named[0]!.at > TIMEOUT_MS + STARTUP_GRACE_MS);
});

test('a gap in the supervisor\'s own checks (it was suspended) starts every clock over', () => {
  const monitor = new LivenessMonitor(TIMEOUT_MS);
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
  const off = new LivenessMonitor(0);
  off.watch(4, 0);
  assert.deepEqual(checkEvery(off, 0, 120_000), []);
  const monitor = new LivenessMonitor(TIMEOUT_MS);
  monitor.watch(5, 0);
  monitor.forget(5);
  assert.deepEqual(checkEvery(monitor, 0, 120_000), []);
});
