// The bench's open loop: requests go out at the rate asked whatever the answers do, and each
// answer's latency counts from when its request was due, also when the request waited to go out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runOpenLoop } from '../../bench/open-loop.ts';
import type { TimedAnswer } from '../../bench/connection-pool.ts';
import { epochNow } from '../support/rush.ts';

test('requests leave at the rate, and a request held back is timed from when it was due', async () => {
  const sentAt: number[] = [];
  let answered = 0;
  const started = epochNow();
  const answers = await runOpenLoop(20, 200, async (index) => {
    sentAt[index] = epochNow() - started;
    // The fifth request waits 100 ms before it is sent (no free connection): its answer says so.
    if (index === 4) await new Promise((resolve) => setTimeout(resolve, 100));
    const at = epochNow();
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { startedAt: at, endedAt: epochNow(), status: 200, body: '' } satisfies TimedAnswer;
  }, () => answered++);
  assert.equal(answers.length, 20);
  assert.equal(answered, 20);
  // 20 requests at 200/s: the last is due at 95 ms, not sent before it, and the loop did not wait for answers.
  assert.ok(sentAt[19]! >= 90, `the last request left at ${sentAt[19]} ms`);
  for (let i = 1; i < 20; i++) assert.ok(sentAt[i]! >= sentAt[i - 1]!, 'in order');
  const held = answers[4]!;
  assert.ok(held.endedAt - held.startedAt >= 100, `the held request's latency ${held.endedAt - held.startedAt} ms counts its wait`);
  for (const [i, answer] of answers.entries()) assert.ok(answer.startedAt <= started + (i * 1000) / 200 + 50, `answer ${i} is timed from when it was due`);
});
