// The event-loop reading that load shedding trusts. A regression here refused every request for
// a quarter of a second after one stall (an interval without a sample read as Infinity).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { watchProcessPressure } from '../../src/observability/process-pressure.ts';

function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* a stall, on purpose */ }
}

test('a stall longer than the sampling interval reads as a finite delay of about its length', async () => {
  const pressure = watchProcessPressure(100);
  try {
    await sleep(250);
    blockFor(400);
    // The sampling timer fires right after the stall; the reading must be finite and show it.
    await sleep(20);
    const delay = pressure.eventLoopDelayMs();
    assert.ok(Number.isFinite(delay), `finite, got ${delay}`);
    assert.ok(delay >= 150, `the stall is seen, got ${delay} ms`);
    // Once the loop runs freely again the reading falls back.
    const deadline = Date.now() + 10_000;
    while (pressure.eventLoopDelayMs() >= 150 && Date.now() < deadline) await sleep(50);
    assert.ok(pressure.eventLoopDelayMs() < 150, `recovered, got ${pressure.eventLoopDelayMs()} ms`);
  } finally {
    pressure.stop();
  }
});

test('the heap reading is the heap in use', () => {
  const pressure = watchProcessPressure(100);
  try {
    assert.ok(pressure.heapUsedBytes() > 1024 * 1024);
  } finally {
    pressure.stop();
  }
});
