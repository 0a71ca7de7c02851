// One keep-alive HTTP/1.1 connection of the bench's load generator: one request at a time, the answer
// framed by its Content-Length (as the service always frames its JSON answers). Lean on purpose:
// the load generator shares the two cores it measures, and undici, even through its handler API,
// costs 41-49 us of CPU per request where this costs about 16 (docs/benchmarks.md). Anything it
// does not expect (chunked framing, an unparsable status line, a second answer) fails the request
// and closes the connection; the next request opens a new one.
import { connect, type Socket } from 'node:net';

export type Http1Answer = { status: number; body: string };

const HEADER_END = Buffer.from('\r\n\r\n');

type Pending = { resolve(answer: Http1Answer): void; reject(error: Error): void; timer: NodeJS.Timeout };

export class Http1Connection {
  private socket: Socket | undefined;
  private pending: Pending | undefined;
  private received: Buffer = Buffer.alloc(0);
  private readonly host: string;
  private readonly port: number;
  private readonly hostHeader: string;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, timeoutMs: number) {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:') throw new Error(`the load generator speaks plain HTTP only, not ${url.protocol}`);
    this.host = url.hostname;
    this.port = Number(url.port || 80);
    this.hostHeader = url.host;
    this.timeoutMs = timeoutMs;
  }

  /** POST `body` (JSON) to `path`; rejects on a network error, a timeout or an unexpected answer. */
  post(path: string, body: string, authorization?: string): Promise<Http1Answer> {
    return this.request('POST', path, body, authorization);
  }

  /** GET `path`, with `Authorization: Bearer <authorization>` when given. */
  get(path: string, authorization?: string): Promise<Http1Answer> {
    return this.request('GET', path, undefined, authorization);
  }

  private request(method: 'GET' | 'POST', path: string, body: string | undefined, authorization: string | undefined): Promise<Http1Answer> {
    if (this.pending) return Promise.reject(new Error('one request at a time on a connection'));
    const socket = this.socket ?? this.open();
    const auth = authorization === undefined ? '' : `authorization: Bearer ${authorization}\r\n`;
    const content = body === undefined ? '' : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
    return new Promise<Http1Answer>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.pending = { resolve, reject, timer };
      socket.write(`${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n${auth}${content}\r\n${body ?? ''}`);
    });
  }

  close(): void {
    this.fail(new Error('connection closed by the load generator'));
  }

  private open(): Socket {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
    this.socket = socket;
    this.received = Buffer.alloc(0);
    return socket;
  }

  private onData(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    const headerEnd = this.received.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = this.received.toString('latin1', 0, headerEnd).toLowerCase();
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    if (!head.startsWith('http/1.1 ') || !Number.isInteger(status) || !length || head.includes('\r\ntransfer-encoding:')) {
      return this.fail(new Error(`unexpected answer: ${head.split('\r\n')[0]?.slice(0, 60)}`));
    }
    const bodyStart = headerEnd + HEADER_END.length;
    const bodyEnd = bodyStart + Number(length[1]);
    if (this.received.length < bodyEnd) return;
    if (this.received.length > bodyEnd || !this.pending) return this.fail(new Error('an answer that was not asked for'));
    const body = this.received.toString('utf8', bodyStart, bodyEnd);
    this.received = Buffer.alloc(0);
    const { resolve, timer } = this.pending;
    this.pending = undefined;
    clearTimeout(timer);
    if (/\r\nconnection: *close/.test(head)) this.drop();
    resolve({ status, body });
  }

  /** Fails the request in flight, if any, and drops the connection. */
  private fail(error: Error): void {
    this.drop();
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  private drop(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    this.received = Buffer.alloc(0);
    socket.removeAllListeners('data');
    socket.removeAllListeners('close');
    socket.removeAllListeners('error');
    socket.on('error', () => {}); // late errors of a dropped socket are not the next request's
    socket.destroy();
  }
}
