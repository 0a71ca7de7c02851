// When the job worker counts the service as in a rush (and sends emails one at a time, slowly).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRush, RUSH_IN_FLIGHT, RUSH_REQUESTS_PER_SECOND } from '../../src/jobs/rush-yield.ts';
import type { ClusterView, SecondPoint, WorkerLane } from '../../src/observability/cluster-state.ts';

const lane = (role: 'http' | 'jobs', inFlight: number, silent = false): WorkerLane =>
  ({ pid: Math.floor(Math.random() * 1e6), role, inFlight, byPhase: {}, sample: [], seconds: [], startedAt: new Date().toISOString(), silent });
const second = (requests: number): SecondPoint => ({ second: 0, requests, errors: 0, p50: null, p90: null, p99: null });
const view = (workers: WorkerLane[], requests: number[]): ClusterView => ({ generatedAt: new Date().toISOString(), workers, history: requests.map(second), restarts: [] });

test('a rush: many requests in flight over the HTTP workers, or many requests a second', () => {
  const half = RUSH_IN_FLIGHT / 2;
  assert.equal(isRush(view([lane('http', half - 1), lane('http', half)], [0, 0])), false, 'one short of the bound');
  assert.equal(isRush(view([lane('http', half), lane('http', half)], [0, 0])), true);
  assert.equal(isRush(view([lane('http', 0), lane('jobs', 99)], [0, 0])), false, 'jobs in flight are not requests');
  assert.equal(isRush(view([lane('http', RUSH_IN_FLIGHT, true)], [0, 0])), false, 'a silent lane is not believed');
  // Fast answers: few in flight at the moment of the snapshot, yet a rush.
  assert.equal(isRush(view([lane('http', 3)], [10, RUSH_REQUESTS_PER_SECOND, 40])), true, 'the second before a partial one counts');
  assert.equal(isRush(view([lane('http', 3)], [RUSH_REQUESTS_PER_SECOND, 10, 40])), false, 'older seconds do not');
  assert.equal(isRush(view([lane('http', 3)], [])), false, 'no history yet');
});
