// A client of a server-sent event stream over a real socket (node:http, one connection each):
// the answer's status and headers, every message and comment as received, and its end.
import http from 'node:http';

export type StreamMessage = { id: string | undefined; event: string | undefined; data: any };

export type EventStream = {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** A non-200 answer's body (a problem), or everything a 200 stream sent so far. */
  text: string;
  messages: StreamMessage[];
  comments: string[];
  /** Settles when the server has ended the stream (or the connection dropped). */
  ended: Promise<void>;
  isEnded(): boolean;
  /** The first message from `from` on that `ok` accepts; rejects after timeoutMs or at the stream's end. */
  waitFor(ok: (message: StreamMessage) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<StreamMessage>;
  close(): void;
};

/** Opens `url` with these headers; resolves once the answer's headers (and a refusal's body) are in. */
export function openEventStream(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      response.setEncoding('utf8');
      let ended = false;
      let buffer = '';
      const waiters = new Set<() => void>();
      const notify = () => { for (const waiter of waiters) waiter(); };
      const stream: EventStream = {
        status: response.statusCode ?? 0,
        headers: response.headers,
        text: '',
        messages: [],
        comments: [],
        ended: new Promise((resolveEnd) => response.on('close', () => {
          ended = true;
          notify();
          resolveEnd();
        })),
        isEnded: () => ended,
        waitFor(ok, { from = 0, timeoutMs = 15_000 } = {}) {
          return new Promise((resolveMessage, rejectMessage) => {
            const check = () => {
              const found = stream.messages.slice(from).find(ok);
              if (found || ended) {
                waiters.delete(check);
                clearTimeout(timer);
                if (found) resolveMessage(found);
                else rejectMessage(new Error(`the stream ended without the message; it had ${JSON.stringify(stream.messages.map((m) => m.data))}`));
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rejectMessage(new Error(`no such message in ${timeoutMs} ms; the stream had ${JSON.stringify(stream.messages.map((m) => m.data))}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () => request.destroy(),
      };
      response.on('data', (chunk: string) => {
        stream.text += chunk;
        if (stream.status !== 200) return;
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message: StreamMessage = { id: undefined, event: undefined, data: undefined };
          let data: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) message.id = line.slice(4);
            else if (line.startsWith('event: ')) message.event = line.slice(7);
            else if (line.startsWith('data: ')) data = (data === undefined ? '' : `${data}\n`) + line.slice(6);
          }
          if (data !== undefined) {
            message.data = JSON.parse(data);
            stream.messages.push(message);
          }
        }
        notify();
      });
      response.on('error', () => undefined); // a dropped connection is an end, seen through `ended`
      if (stream.status === 200) resolve(stream);
      else response.on('end', () => resolve(stream));
    });
  });
}
