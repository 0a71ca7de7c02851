// The log throttle: the first line of a key is written, then at most one per interval per key,
// carrying the count of lines left out since the one before; keys do not share an interval.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogThrottle } from '../../src/observability/log-throttle.ts';

test('the first line is written, repeats within the interval are counted, the next line after it carries the count', () => {
  const throttle = createLogThrottle(10_000);
  assert.equal(throttle.admit('53100', 1_000), 0, 'the first line');
  for (let i = 0; i < 999; i++) assert.equal(throttle.admit('53100', 1_000 + i), undefined, `repeat ${i + 1} within the interval`);
  assert.equal(throttle.admit('53100', 10_999), undefined, 'still within the interval');
  assert.equal(throttle.admit('53100', 11_000), 1_000, 'one line after the interval, with the 1000 left out');
  assert.equal(throttle.admit('53100', 11_001), undefined, 'a new interval began with that line');
  assert.equal(throttle.admit('53100', 30_000), 1, 'the count restarts with each written line');
  assert.equal(throttle.admit('53100', 50_000), 0, 'nothing left out since');
});

test('each key has its own interval', () => {
  const throttle = createLogThrottle(10_000);
  assert.equal(throttle.admit('53100', 0), 0);
  assert.equal(throttle.admit('53200', 1), 0, 'another code is written at once');
  assert.equal(throttle.admit('53100', 2), undefined);
  assert.equal(throttle.admit('53200', 3), undefined);
});
