// Owns a bounded set of the bench's lean keep-alive connections (Http1Connection) behind one FIFO of
// requests: a request waits for a free connection, so `size` bounds what is in flight. Each
// request's answer is timed from when it was sent, not from when it was queued. A request that
// meets the close of a connection the service timed out while idle (keepAliveTimeout) is sent
// once more on a new one, as HTTP clients do (RFC 9112, 9.3.1): the service never read it.
import { Http1Connection } from '../test/support/http1-connection.ts';
import { epochNow } from '../test/support/rush.ts';
import { maxOf } from './stats.ts';

export type TimedAnswer = {
  /** Epoch ms: written to the socket, answer read. */
  startedAt: number;
  endedAt: number;
  /** 0: no answer (network error or timeout; see error). */
  status: number;
  body: string;
  error?: string;
};

/** From the first request sent to the last answer read (0 for none). */
export function spanOf(answers: readonly TimedAnswer[]): number {
  if (answers.length === 0) return 0;
  return maxOf(answers.map((a) => a.endedAt)) + maxOf(answers.map((a) => -a.startedAt));
}

/** Http1Connection's error when the service closed the socket before answering. */
const CLOSED_BY_SERVER = 'connection closed by the server';

type Task = { method: 'GET' | 'POST'; path: string; body: string | undefined; token: string | undefined; resolve(answer: TimedAnswer): void };

export class ConnectionPool {
  private readonly idle: Http1Connection[];
  private readonly all: Http1Connection[];
  /** Connections that have answered a request: kept alive, so the service may close them idle. */
  private readonly reused = new WeakSet<Http1Connection>();
  private readonly queue: Task[] = [];
  private head = 0;
  private closed = false;

  constructor(baseUrl: string, size: number, timeoutMs: number) {
    this.all = Array.from({ length: size }, () => new Http1Connection(baseUrl, timeoutMs));
    this.idle = [...this.all];
  }

  /** Requests waiting for a connection. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Never rejects: a failure is an answer with status 0. After close(), answers status 0 at once. */
  send(method: 'GET' | 'POST', path: string, options: { body?: string; token?: string } = {}): Promise<TimedAnswer> {
    return new Promise((resolve) => {
      this.queue.push({ method, path, body: options.body, token: options.token, resolve });
      this.dispatch();
    });
  }

  close(): void {
    this.closed = true;
    for (const connection of this.all) connection.close();
    this.dispatch();
  }

  private dispatch(): void {
    while (this.head < this.queue.length && (this.closed || this.idle.length > 0)) {
      const task = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Task;
      if (this.head > 4096 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (this.closed) {
        const now = epochNow();
        task.resolve({ startedAt: now, endedAt: now, status: 0, body: '', error: 'the pool was closed' });
        continue;
      }
      void this.run(this.idle.pop()!, task);
    }
  }

  private async run(connection: Http1Connection, task: Task): Promise<void> {
    const startedAt = epochNow();
    let answer: TimedAnswer;
    const send = () => (task.method === 'GET' ? connection.get(task.path, task.token) : connection.post(task.path, task.body ?? '', task.token));
    try {
      let reply;
      try {
        reply = await send();
      } catch (error) {
        if (!(this.reused.has(connection) && error instanceof Error && error.message === CLOSED_BY_SERVER)) throw error;
        reply = await send();
      }
      this.reused.add(connection);
      answer = { startedAt, endedAt: epochNow(), status: reply.status, body: reply.body };
    } catch (error) {
      answer = { startedAt, endedAt: epochNow(), status: 0, body: '', error: error instanceof Error ? error.message : String(error) };
    }
    this.idle.push(connection);
    task.resolve(answer);
    this.dispatch();
  }
}
