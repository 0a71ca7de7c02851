// A real terminal for tests of what a user does at a shell prompt: a private tmux server with
// one interactive bash, keys typed into it (Ctrl-C included), and its screen read back.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { serviceEnv } from './service-process.ts';

const run = promisify(execFile);

export type Terminal = {
  /** Types `text` and presses Enter. */
  type(text: string): Promise<void>;
  /** Presses keys by tmux name, e.g. 'C-c'. */
  press(...keys: string[]): Promise<void>;
  /** Everything on the screen and in its scrollback, long lines joined. */
  screen(): Promise<string>;
  waitForScreen(pattern: RegExp, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
};

/** A terminal 200 columns wide, its shell in `dir` (the tmux config lives there too). */
export async function openTerminal(dir: string, cwd: string): Promise<Terminal> {
  const socket = `registrar-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const configFile = path.join(dir, 'tmux.conf');
  await writeFile(configFile, 'set -g history-limit 100000\n');
  // No service variable (and none of the test runner's) reaches the shell: the test types them.
  const env: NodeJS.ProcessEnv = { ...serviceEnv({}), TERM: 'xterm-256color' };
  for (const name of ['LOG_LEVEL', 'MAX_EVENT_LOOP_DELAY_MS', 'MAX_DATABASE_BACKLOG']) delete env[name];
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, '-f', configFile, ...args], { env, cwd });
  await tmux('new-session', '-d', '-s', 'main', '-x', '200', '-y', '50', 'bash --norc --noprofile');
  const terminal: Terminal = {
    async type(text) {
      await tmux('send-keys', '-t', 'main', '-l', text);
      await tmux('send-keys', '-t', 'main', 'Enter');
    },
    async press(...keys) {
      await tmux('send-keys', '-t', 'main', ...keys);
    },
    async screen() {
      return (await tmux('capture-pane', '-p', '-J', '-t', 'main', '-S', '-')).stdout;
    },
    async waitForScreen(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let text = '';
      while (Date.now() < deadline) {
        text = await terminal.screen();
        if (pattern.test(text)) return text;
        await sleep(250);
      }
      throw new Error(`no ${pattern} on the terminal within ${timeoutMs} ms; it shows:\n${text.trimEnd().split('\n').slice(-40).join('\n')}`);
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
    },
  };
  return terminal;
}
