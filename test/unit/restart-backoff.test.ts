// The supervisor's restart backoff: doubling per crash in a row, capped, reset by a healthy run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countCrashes, HEALTHY_UPTIME_MS, restartDelayMs } from '../../src/runtime/restart-backoff.ts';

test('crashes in a row double the wait up to 30 s; a worker that ran a while starts over', () => {
  let crashes = 0;
  const delays: number[] = [];
  for (let i = 0; i < 12; i++) {
    crashes = countCrashes(crashes, 50); // dies at once, every time
    delays.push(restartDelayMs(crashes));
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
  crashes = countCrashes(crashes, HEALTHY_UPTIME_MS);
  assert.equal(restartDelayMs(crashes), 100);
});
