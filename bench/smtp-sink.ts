// Owns the `emails` scenario's SMTP sink: a real SMTP server (smtp-server) that accepts every
// message at once and keeps only counts: messages accepted, and distinct Message-IDs (so a
// duplicate shows), with no message text held, so a million messages fit in memory.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export type SmtpSink = {
  url: string;
  /** Messages accepted, duplicates included. */
  readonly accepted: number;
  /** Distinct Message-IDs accepted. */
  readonly distinct: number;
  /** Connections opened by clients so far. */
  readonly connections: number;
  stop(): Promise<void>;
};

const MESSAGE_ID = /^Message-ID:\s*(?:\r?\n[ \t]+)?(\S+)/im;

export async function startSmtpSink(): Promise<SmtpSink> {
  const ids = new Set<string>();
  let accepted = 0;
  let connections = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 1024 * 1024,
    onConnect(_session, callback) {
      connections += 1;
      callback();
    },
    onData(stream, _session, callback) {
      // The headers come first: the Message-ID is in the message's first chunk.
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 4096) head += chunk.toString('latin1', 0, Math.min(chunk.length, 4096));
      });
      stream.on('end', () => {
        accepted += 1;
        ids.add(MESSAGE_ID.exec(head)?.[1] ?? `(no Message-ID) ${accepted}`);
        callback();
      });
    },
  });
  server.on('error', () => {}); // a client's connection dropping is that connection's end
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    get distinct() {
      return ids.size;
    },
    get connections() {
      return connections;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
