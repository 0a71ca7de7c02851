// The dashboard's picture of the cluster: lanes for the living processes only, restarts as they
// happen, and every request of the last minute counted, a dead worker's last ones included.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterStateHub } from '../../src/observability/cluster-state.ts';
import { emptySummary } from '../../src/observability/latency-buckets.ts';
import type { WorkerActivity } from '../../src/observability/request-tracker.ts';

function activity(pid: number, requestsLastSecond: number): WorkerActivity {
  const summary = emptySummary(Math.floor(Date.now() / 1000) - 1);
  summary.count = requestsLastSecond;
  return { pid, role: 'http', inFlight: 1, byPhase: { 'waiting for the database': 1 }, sample: [], seconds: [summary] };
}

test('a state message that arrives after its worker exited counts its requests but brings back no lane', () => {
  const hub = new ClusterStateHub();
  hub.recordStart(101, 'http');
  hub.recordStart(102, 'http');
  hub.update(activity(101, 5));
  hub.recordExit(101, 'http', null, 'SIGKILL');
  hub.update(activity(101, 7)); // sent before it died, received after
  hub.update(activity(102, 3));
  const view = hub.view();
  assert.deepEqual(view.workers.map((w) => w.pid), [102]);
  assert.deepEqual(view.restarts.map((r) => [r.pid, r.signal]), [[101, 'SIGKILL']]);
  assert.equal(view.history.reduce((sum, point) => sum + point.requests, 0), 15);
});
