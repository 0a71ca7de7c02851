// A real HTTP endpoint that receives webhooks and checks them with the Standard Webhooks
// library's own verification, as a receiver would. It can answer errors first to force retries.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export type ReceivedWebhook = { id: string; type: string; body: any; verified: boolean; answeredStatus: number };

export type WebhookReceiver = {
  url: string;
  received: ReceivedWebhook[];
  /** Status codes to answer for the first attempts of each webhook-id, then 200. */
  failFirst: number[];
  /** How long each answer takes (a slow receiver). */
  delayMs: number;
  /** The most requests it was answering at once. */
  readonly peakInFlight: number;
  setSecret(secret: string): void;
  close(): Promise<void>;
};

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const attemptsById = new Map<string, number>();
  let verifier: Webhook | undefined;
  const state = { failFirst: [] as number[], delayMs: 0, inFlight: 0, peakInFlight: 0 };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    state.inFlight += 1;
    state.peakInFlight = Math.max(state.peakInFlight, state.inFlight);
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const payload = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
      let verified = false;
      try {
        verifier?.verify(payload, headers);
        verified = verifier !== undefined;
      } catch {
        verified = false;
      }
      const id = headers['webhook-id'] ?? '';
      const attempt = (attemptsById.get(id) ?? 0) + 1;
      attemptsById.set(id, attempt);
      const status = state.failFirst[attempt - 1] ?? 200;
      const body = JSON.parse(payload || 'null');
      received.push({ id, type: body?.type, body, verified, answeredStatus: status });
      setTimeout(() => {
        state.inFlight -= 1;
        response.writeHead(status).end();
      }, state.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    get failFirst() {
      return state.failFirst;
    },
    set failFirst(value: number[]) {
      state.failFirst = value;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(value: number) {
      state.delayMs = value;
    },
    get peakInFlight() {
      return state.peakInFlight;
    },
    setSecret(secret) {
      verifier = new Webhook(secret);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
