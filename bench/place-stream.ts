// Owns one held GET /queue/{id}/events of the bench: a raw socket (thousands are held at once, so no
// fetch), the answer's head checked (200, text/event-stream), the body de-chunked when chunked, and
// each `event: place` message handed on with the time it arrived. Comments (keep-alives) are skipped.
import { connect, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { epochNow } from '../test/support/rush.ts';

export type StreamState = 'opening' | 'open' | 'ended' | 'failed';

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

export class PlaceStream {
  state: StreamState = 'opening';
  /** `event: place` messages received. */
  messages = 0;
  /** Why it failed: the answer's status line or the socket's error. */
  failure: string | undefined;
  /** Why it ended or failed (the last chunk, the socket closed, an error). */
  endReason: string | undefined;
  /** Epoch ms of the end or failure. */
  endedAt: number | undefined;
  private socket: Socket | undefined;
  private head: Buffer = Buffer.alloc(0);
  private chunked = false;
  private raw: Buffer = Buffer.alloc(0);
  private readonly decoder = new StringDecoder('utf8');
  private text = '';
  private opened: { resolve(): void; reject(error: Error): void } | undefined;

  private readonly baseUrl: string;
  private readonly placeId: string;
  private readonly token: string;
  private readonly onPlace: (place: Record<string, unknown>, at: number) => void;

  constructor(baseUrl: string, placeId: string, token: string, onPlace: (place: Record<string, unknown>, at: number) => void) {
    this.baseUrl = baseUrl;
    this.placeId = placeId;
    this.token = token;
    this.onPlace = onPlace;
  }

  /** Resolves once the answer's head is in and is an event stream; rejects otherwise (state failed). */
  open(timeoutMs: number): Promise<void> {
    const url = new URL(this.baseUrl);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.finish('failed', `no answer head within ${timeoutMs} ms`), timeoutMs);
      this.opened = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
      const socket = connect({ host: url.hostname, port: Number(url.port || 80), noDelay: true });
      this.socket = socket;
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('error', (error) => this.finish('failed', error.message));
      socket.on('close', () => this.finish(this.state === 'open' ? 'ended' : 'failed', this.state === 'open' ? 'the connection closed' : 'closed before its head'));
      socket.write(`GET /queue/${this.placeId}/events HTTP/1.1\r\nhost: ${url.host}\r\naccept: text/event-stream\r\nauthorization: Bearer ${this.token}\r\n\r\n`);
    });
  }

  close(): void {
    this.finish(this.state === 'open' ? 'ended' : 'failed', 'closed by the bench');
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'opening') {
      this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
      const end = this.head.indexOf(HEADER_END);
      if (end < 0) return;
      const head = this.head.toString('latin1', 0, end).toLowerCase();
      const rest = this.head.subarray(end + HEADER_END.length);
      this.head = Buffer.alloc(0);
      if (!head.startsWith('http/1.1 200') || !/\r\ncontent-type: *text\/event-stream/.test(head)) {
        this.finish('failed', head.split('\r\n')[0] ?? 'no status line');
        return;
      }
      this.chunked = /\r\ntransfer-encoding: *chunked/.test(head);
      this.state = 'open';
      this.opened?.resolve();
      this.opened = undefined;
      if (rest.length > 0) this.onBody(rest);
      return;
    }
    if (this.state === 'open') this.onBody(chunk);
  }

  private onBody(chunk: Buffer): void {
    if (!this.chunked) {
      this.onText(this.decoder.write(chunk));
      return;
    }
    this.raw = this.raw.length === 0 ? chunk : Buffer.concat([this.raw, chunk]);
    for (;;) {
      const lineEnd = this.raw.indexOf(CRLF);
      if (lineEnd < 0) return;
      const size = Number.parseInt(this.raw.toString('latin1', 0, lineEnd), 16);
      if (!Number.isInteger(size)) {
        this.finish('failed', 'a malformed chunk');
        return;
      }
      if (size === 0) {
        this.finish('ended', 'the last chunk');
        return;
      }
      const dataStart = lineEnd + CRLF.length;
      if (this.raw.length < dataStart + size + CRLF.length) return;
      this.onText(this.decoder.write(this.raw.subarray(dataStart, dataStart + size)));
      this.raw = this.raw.subarray(dataStart + size + CRLF.length);
    }
  }

  private onText(text: string): void {
    this.text += text;
    for (let end = this.text.indexOf('\n\n'); end >= 0; end = this.text.indexOf('\n\n')) {
      const block = this.text.slice(0, end);
      this.text = this.text.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event !== 'place' || data.length === 0) continue;
      this.messages += 1;
      try {
        this.onPlace(JSON.parse(data.join('\n')) as Record<string, unknown>, epochNow());
      } catch {
        this.finish('failed', 'a message whose data is not JSON');
        return;
      }
    }
  }

  private finish(state: 'ended' | 'failed', reason: string): void {
    if (this.state === 'ended' || this.state === 'failed') return;
    this.state = state;
    this.endedAt = epochNow();
    this.endReason = reason;
    if (state === 'failed') this.failure = reason;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.removeAllListeners('data');
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      socket.destroy();
    }
    this.opened?.reject(new Error(reason));
    this.opened = undefined;
  }
}
