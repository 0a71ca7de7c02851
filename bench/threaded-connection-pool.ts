// Owns a ConnectionPool in a worker thread of its own: the requests whose latency a scenario
// measures go out and are timed on an event loop that nothing else of the bench runs on. In the
// `queue` opening, one bench thread holds 10,000 streams, the bots and the polls, and its event
// loop's delay (p99 82 ms, up to 1.2 s, measured) would be added to every student's
// registration; real students have their own machines. The thread still shares the cores.
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ConnectionPool, type TimedAnswer } from './connection-pool.ts';
import { epochNow } from '../test/support/rush.ts';

type Setup = { baseUrl: string; size: number; timeoutMs: number };
type Ask = { id: number; method: 'GET' | 'POST'; path: string; body?: string | undefined; token?: string | undefined } | { close: true };
type Told = { id: number; answer: TimedAnswer };

export class ThreadedConnectionPool {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (answer: TimedAnswer) => void>();
  private nextId = 0;

  constructor(baseUrl: string, size: number, timeoutMs: number) {
    this.worker = new Worker(fileURLToPath(import.meta.url), { workerData: { baseUrl, size, timeoutMs } satisfies Setup });
    this.worker.on('message', ({ id, answer }: Told) => {
      this.pending.get(id)?.(answer);
      this.pending.delete(id);
    });
    this.worker.on('error', (error) => this.failAll(error.message));
    this.worker.on('exit', () => this.failAll('the pool\'s thread exited'));
  }

  /** As ConnectionPool.send: never rejects, a failure is an answer with status 0. */
  send(method: 'GET' | 'POST', path: string, options: { body?: string; token?: string } = {}): Promise<TimedAnswer> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ id, method, path, body: options.body, token: options.token } satisfies Ask);
    });
  }

  /** Closes the connections (requests still waiting answer status 0) and ends the thread. */
  async close(): Promise<void> {
    this.worker.postMessage({ close: true } satisfies Ask);
    await new Promise((resolve) => this.worker.once('exit', resolve));
  }

  private failAll(error: string): void {
    const now = epochNow();
    for (const resolve of this.pending.values()) resolve({ startedAt: now, endedAt: now, status: 0, body: '', error });
    this.pending.clear();
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { baseUrl, size, timeoutMs } = workerData as Setup;
  const pool = new ConnectionPool(baseUrl, size, timeoutMs);
  let inFlight = 0;
  let closing = false;
  const end = () => {
    if (closing && inFlight === 0) port.close();
  };
  port.on('message', (ask: Ask) => {
    if ('close' in ask) {
      closing = true;
      pool.close();
      end();
      return;
    }
    inFlight += 1;
    void pool.send(ask.method, ask.path, { ...(ask.body !== undefined ? { body: ask.body } : {}), ...(ask.token !== undefined ? { token: ask.token } : {}) }).then((answer) => {
      inFlight -= 1;
      port.postMessage({ id: ask.id, answer } satisfies Told);
      end();
    });
  });
}
