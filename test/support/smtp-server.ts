// A real SMTP server (smtp-server), shared by the bench and the tests: a configurable delay and refusals
// per message, stop/start to play an outage, when each message arrived, and how many it handled at once.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export type ReceivedMessage = {
  messageId: string;
  to: string[];
  subject: string;
  raw: string;
  /** Date.now() when the message's data had arrived, before the configured delay. */
  dataAt: number;
  /** Date.now() when the server accepted it (after the delay): the moment the email is "sent". */
  receivedAt: number;
};

export type SmtpBehaviour = {
  delayMs: number;
  /** 451 on the first attempt of each Message-ID, accepted on the next. */
  refuseFirstAttempt: boolean;
  /** Recipients refused with 550, permanently. */
  rejectRecipients: Set<string>;
  /** While set, every message is refused with this reply (a 4xx: 421 closing, 451 try later) after the delay. */
  refuseWith: number | undefined;
};

/** Messages whose data has begun and whose reply is not given yet (the delay included): now, and the most since the last reset. */
export type MessagesInProgress = { now: number; peak: number; resetPeak(): void };

export type TestSmtpServer = {
  url: string;
  port: number;
  messages: ReceivedMessage[];
  attempts: Map<string, number>;
  behaviour: SmtpBehaviour;
  inProgress: MessagesInProgress;
  stop(): Promise<void>;
  start(): Promise<void>;
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
};

function header(raw: string, name: string): string {
  const match = new RegExp(`^${name}:\\s*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(raw);
  return match?.[1]?.replace(/\r?\n[ \t]/g, ' ').trim() ?? '';
}

export async function startSmtpServer(options: Partial<SmtpBehaviour> = {}): Promise<TestSmtpServer> {
  const behaviour: SmtpBehaviour = { delayMs: 0, refuseFirstAttempt: false, rejectRecipients: new Set(), refuseWith: undefined, ...options };
  const inProgress: MessagesInProgress = {
    now: 0,
    peak: 0,
    resetPeak() {
      this.peak = this.now;
    },
  };
  const messages: ReceivedMessage[] = [];
  const attempts = new Map<string, number>();
  let port = 0;
  let server: SMTPServer | undefined;
  /** Sessions whose client has gone. A reply it was not there to hear accepts nothing: the client sends the message again. */
  const gone = new Set<string>();

  const make = () => new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 1024 * 1024,
    onRcptTo(address, _session, callback) {
      if (behaviour.rejectRecipients.has(address.address.toLowerCase())) {
        return callback(Object.assign(new Error('550 5.1.1 mailbox unavailable'), { responseCode: 550 }));
      }
      callback();
    },
    onClose(session) {
      gone.add(session.id);
    },
    onData(stream, session, callback) {
      inProgress.now += 1;
      inProgress.peak = Math.max(inProgress.peak, inProgress.now);
      const reply = (error?: Error) => {
        inProgress.now -= 1;
        callback(error);
      };
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const dataAt = Date.now();
        const raw = Buffer.concat(chunks).toString('utf8');
        const messageId = header(raw, 'Message-ID');
        const seen = (attempts.get(messageId) ?? 0) + 1;
        attempts.set(messageId, seen);
        setTimeout(() => {
          if (behaviour.refuseWith !== undefined) {
            return reply(Object.assign(new Error(`${behaviour.refuseWith} 4.3.2 busy, try again later`), { responseCode: behaviour.refuseWith }));
          }
          if (behaviour.refuseFirstAttempt && seen === 1) {
            return reply(Object.assign(new Error('451 4.3.0 try again later'), { responseCode: 451 }));
          }
          if (gone.has(session.id)) return reply();
          messages.push({ messageId, to: session.envelope.rcptTo.map((r) => r.address), subject: header(raw, 'Subject'), raw, dataAt, receivedAt: Date.now() });
          reply();
        }, behaviour.delayMs);
      });
    },
  });

  const start = async () => {
    const current = make();
    server = current;
    await new Promise<void>((resolve, reject) => {
      current.once('error', reject);
      current.listen(port, '127.0.0.1', () => {
        current.off('error', reject);
        resolve();
      });
    });
    // A client's connection dropping (ECONNRESET when the service is stopped or killed mid-send)
    // is that connection's end, not the server's: without a listener it would crash the process.
    current.on('error', () => {});
    port = (current.server.address() as AddressInfo).port;
  };
  await start();

  return {
    get url() {
      return `smtp://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    messages,
    attempts,
    behaviour,
    inProgress,
    start,
    async stop() {
      const current = server;
      server = undefined;
      // Drop open connections too: an outage, not a polite goodbye.
      await new Promise<void>((resolve) => current?.close(() => resolve()) ?? resolve());
    },
    async waitForMessages(count, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} messages, got ${messages.length} in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return messages;
    },
  };
}
