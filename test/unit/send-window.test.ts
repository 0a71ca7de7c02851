// The send window's arithmetic (AIMD under a ceiling) and the limiter built on it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeEmailStep } from '../../src/observability/job-activity.ts';
import { afterCongestion, afterSuccess, BASELINE_ROUNDS, createSendWindow, isCongestion, latencyBoundMs, openWindow, type WindowState } from '../../src/jobs/email/send-window.ts';

const fast = { latencyMs: 10, windowFull: true };

function succeed(state: WindowState, times: number, send = fast): WindowState {
  for (let i = 0; i < times; i += 1) state = afterSuccess(state, send);
  return state;
}

test('a window of full, fast sends grows the window by one', () => {
  let state = openWindow(10, 4);
  state = succeed(state, 3);
  assert.equal(state.window, 4, 'not before the round is complete');
  state = succeed(state, 1);
  assert.equal(state.window, 5);
  state = succeed(state, 5);
  assert.equal(state.window, 6, 'the next round is as long as the grown window');
});

test('the window never grows above the ceiling', () => {
  const state = succeed(openWindow(3, 1), 100);
  assert.equal(state.window, 3);
});

test('a send beyond the latency bound holds the round back', () => {
  let state = succeed(openWindow(10, 2), 2);
  assert.equal(state.window, 3);
  assert.equal(state.baselineMs, 10);
  state = afterSuccess(state, { latencyMs: latencyBoundMs(10) + 1, windowFull: true });
  state = succeed(state, 2);
  assert.equal(state.window, 3, 'one slow send in the round: no growth');
  state = succeed(state, 3);
  assert.equal(state.window, 4, 'the next round, within the bound, grows');
});

test('sends that did not fill the window do not grow it', () => {
  const state = succeed(openWindow(10, 2), 20, { latencyMs: 10, windowFull: false });
  assert.equal(state.window, 2);
});

test('a slower server becomes the baseline after BASELINE_ROUNDS rounds', () => {
  let state = succeed(openWindow(100, 2), 2);
  const slow = { latencyMs: 1_000, windowFull: true };
  const size = state.window;
  for (let round = 0; round < BASELINE_ROUNDS; round += 1) state = succeed(state, state.window, slow);
  assert.equal(state.window, size, 'no growth while the latency is beyond the old baseline');
  assert.equal(state.baselineMs, 1_000);
  state = succeed(state, state.window, slow);
  assert.equal(state.window, size + 1, 'the new latency holds: growth again');
});

test('congestion halves the window once per window of sends, never below 1', () => {
  let state = openWindow(64);
  const epoch = state.epoch;
  state = afterCongestion(state, epoch);
  assert.equal(state.window, 32);
  state = afterCongestion(state, epoch);
  assert.equal(state.window, 32, 'a send begun before the halving does not halve again');
  state = afterCongestion(state, state.epoch);
  assert.equal(state.window, 16);
  for (let i = 0; i < 10; i += 1) state = afterCongestion(state, state.epoch);
  assert.equal(state.window, 1);
});

test('4xx replies, timeouts, refused and dropped connections are congestion; 5xx, a recipient deferred and others are not', () => {
  assert.equal(isCongestion({ responseCode: 421 }), true);
  assert.equal(isCongestion({ responseCode: 451, code: 'EMESSAGE', command: 'DATA' }), true);
  assert.equal(isCongestion({ responseCode: 421, code: 'EENVELOPE', command: 'RCPT TO' }), true);
  assert.equal(isCongestion({ responseCode: 450, code: 'EENVELOPE', command: 'RCPT TO' }), false, 'greylisting defers one recipient');
  assert.equal(isCongestion({ code: 'ETIMEDOUT' }), true);
  assert.equal(isCongestion({ code: 'ECONNECTION' }), true);
  assert.equal(isCongestion({ code: 'ESOCKET' }), true);
  assert.equal(isCongestion({ responseCode: 550, code: 'EENVELOPE' }), false);
  assert.equal(isCongestion({ responseCode: 535, code: 'EAUTH' }), false);
  assert.equal(isCongestion(new Error('other')), false);
});

test('the limiter holds calls to the window and follows it as it halves and grows', async () => {
  const resized: number[] = [];
  const window = createSendWindow({ ceiling: 8, initial: 4, onResize: (size) => resized.push(size) });
  let running = 0;
  let peak = 0;
  const send = (outcome: 'ok' | 'refused') => window(async () => {
    running += 1;
    peak = Math.max(peak, running);
    const ticket = window.begin();
    await sleep(5);
    running -= 1;
    if (outcome === 'ok') window.succeeded(ticket);
    else window.failed(ticket, { responseCode: 421 });
  });
  await Promise.all(Array.from({ length: 8 }, () => send('refused')));
  assert.equal(peak, 4);
  assert.equal(window.size, 1, 'halved once per window of sends: 4, 2, 1');
  peak = 0;
  await Promise.all(Array.from({ length: 3 }, () => send('ok')));
  assert.equal(peak, 2, 'one send alone in the window of 1, then two in the window of 2');
  assert.equal(window.size, 3, 'grown by one per window: 1 -> 2 (1 send), 2 -> 3 (2 sends)');
  assert.deepEqual(resized, [2, 1, 2, 3]);
});

test('a rush caps the window and the window is back when it is over', async () => {
  const window = createSendWindow({ ceiling: 6 });
  let running = 0;
  let peak = 0;
  const send = () => window(async () => {
    running += 1;
    peak = Math.max(peak, running);
    await sleep(5);
    running -= 1;
  });
  window.setLimit(1, 1);
  await Promise.all(Array.from({ length: 4 }, send));
  assert.equal(peak, 1);
  window.setLimit(window.ceiling);
  peak = 0;
  await Promise.all(Array.from({ length: 12 }, send));
  assert.equal(peak, 6);
});

test('the job lane names the send window beside an email waiting for its turn, except while a rush paces it', () => {
  assert.equal(describeEmailStep('turn', { rush: false, transport: 'smtp', position: { at: 2, of: 9 }, window: 12 }).detail, 'waiting for a mail-server connection (email 2 of 9 in line, send window 12)');
  assert.equal(describeEmailStep('turn', { rush: true, transport: 'smtp', position: { at: 2, of: 9 }, window: 12 }).detail, 'waiting: rush pacing (email 2 of 9 in line)');
});
