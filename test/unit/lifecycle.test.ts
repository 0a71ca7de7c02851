// The Lifecycle's signal rules, in a real child process (they end in process.exit): a repeat
// within REPEAT_WINDOW_MS is the same stop (one Ctrl-C arrives twice: from the terminal and from
// npm); a later one forces, running the force hooks first. And start-up steps give up once a
// stop begins.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Lifecycle, REPEAT_WINDOW_MS, StopRequested } from '../../src/runtime/lifecycle.ts';
import { NODE_BIN, REPO_DIR } from '../support/service-process.ts';

const LIFECYCLE_URL = pathToFileURL(path.join(REPO_DIR, 'src/runtime/lifecycle.ts')).href;

/** A process whose stop takes `cleanupMs`; it says when it is ready. */
function child(cleanupMs: number) {
  const script = `
    import { Lifecycle } from ${JSON.stringify(LIFECYCLE_URL)};
    const lifecycle = new Lifecycle((message) => console.log(message));
    lifecycle.add('slow cleanup', () => new Promise((resolve) => setTimeout(resolve, ${cleanupMs})));
    lifecycle.onForce(() => console.log('force hook ran'));
    lifecycle.handleSignals(120_000);
    setInterval(() => {}, 1_000);
    console.log('ready');
  `;
  const proc = spawn(NODE_BIN, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const waitFor = async (text: string) => {
    for (let i = 0; i < 600 && !output.includes(text); i++) await sleep(100);
    assert.ok(output.includes(text), `"${text}" in ${JSON.stringify(output)}`);
  };
  return { proc, exited, waitFor, output: () => output };
}

test('two SIGINTs 50 ms apart (one Ctrl-C under npm) are one graceful stop', async () => {
  const c = child(1_500);
  await c.waitFor('ready');
  c.proc.kill('SIGINT');
  // Apart, so the kernel does not merge them into one pending signal, as a terminal's and npm's do not.
  await sleep(50);
  c.proc.kill('SIGINT');
  const [code, signal] = await c.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, c.output());
  assert.match(c.output(), /SIGINT: stopping gracefully/);
  assert.match(c.output(), /stopped/);
  assert.doesNotMatch(c.output(), /exiting now|force hook ran/);
});

test('a signal after the repeat window forces: the force hooks run, exit 130', async () => {
  const c = child(60_000);
  await c.waitFor('ready');
  c.proc.kill('SIGTERM');
  await c.waitFor('SIGTERM: stopping gracefully');
  await sleep(REPEAT_WINDOW_MS + 500);
  c.proc.kill('SIGINT');
  const [code, signal] = await c.exited;
  assert.deepEqual({ code, signal }, { code: 130, signal: null }, c.output());
  assert.match(c.output(), /SIGINT again: exiting now[\s\S]*force hook ran/);
});

test('untilStopped passes a step\'s result on, and gives up on it once a stop begins', async () => {
  const lifecycle = new Lifecycle(() => {});
  assert.equal(await lifecycle.untilStopped(Promise.resolve(42)), 42);
  await assert.rejects(lifecycle.untilStopped(Promise.reject(new Error('step failed'))), /step failed/);
  const never = new Promise<number>(() => {});
  const waiting = lifecycle.untilStopped(never);
  await lifecycle.stop(1_000);
  await assert.rejects(waiting, StopRequested);
  await assert.rejects(lifecycle.untilStopped(Promise.resolve(1)), StopRequested, 'a step after the stop began does not run on');
});

test('a cleanup past the stop\'s bound has its force hook run, and the stop moves on', async () => {
  const messages: string[] = [];
  const lifecycle = new Lifecycle((message) => messages.push(message));
  const order: string[] = [];
  lifecycle.add('quick', async () => {
    order.push('quick');
  }, () => order.push('quick forced'));
  lifecycle.add('never ends', () => new Promise<void>(() => {}), () => order.push('never ends forced'));
  await lifecycle.stop(100);
  assert.deepEqual(order, ['never ends forced', 'quick'], 'only the cleanup that timed out is forced');
  assert.ok(messages.some((message) => /stopping never ends took over 100 ms; forcing it and moving on/.test(message)), messages.join('\n'));
});
