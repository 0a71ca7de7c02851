// Cuts an import file into chunks of about `chunkBytes` that each start at a record boundary,
// so the chunks can be parsed in parallel. A newline ends a record only outside quotes, and in
// RFC 4180 every quote inside a quoted field is doubled: a newline is a boundary exactly when
// the count of quotes before it is even. Counting uses Buffer.indexOf (native), not a JS loop
// over every byte.
import { createReadStream } from 'node:fs';

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export class ImportFileError extends Error {
  override name = 'ImportFileError';
}

function countQuotes(buffer: Buffer, from: number, to: number): number {
  let count = 0;
  for (let at = buffer.indexOf(QUOTE, from); at !== -1 && at < to; at = buffer.indexOf(QUOTE, at + 1)) count += 1;
  return count;
}

/** The index just after the last newline outside quotes, or -1 when there is none. */
export function lastRecordBoundary(buffer: Buffer): number {
  let newline = buffer.lastIndexOf(NEWLINE);
  if (newline === -1) return -1;
  let quotes = countQuotes(buffer, 0, newline);
  while (quotes % 2 === 1) {
    const previous = newline === 0 ? -1 : buffer.lastIndexOf(NEWLINE, newline - 1);
    if (previous === -1) return -1;
    quotes -= countQuotes(buffer, previous + 1, newline);
    newline = previous;
  }
  return newline + 1;
}

/** The index just after the first newline outside quotes, or -1. */
export function firstRecordBoundary(buffer: Buffer): number {
  let quotes = 0;
  let from = 0;
  for (let newline = buffer.indexOf(NEWLINE); newline !== -1; newline = buffer.indexOf(NEWLINE, newline + 1)) {
    quotes += countQuotes(buffer, from, newline);
    from = newline;
    if (quotes % 2 === 0) return newline + 1;
  }
  return -1;
}

export type ChunkOptions = { chunkBytes?: number; maxRecordBytes?: number };

/** Chunks of the file in order, the UTF-8 byte-order mark dropped. */
export async function* readRecordChunks(file: string, options: ChunkOptions = {}): AsyncGenerator<Buffer> {
  const chunkBytes = options.chunkBytes ?? 1024 * 1024;
  const maxRecordBytes = options.maxRecordBytes ?? 16 * 1024 * 1024;
  let carry: Buffer = Buffer.alloc(0);
  let first = true;
  for await (const data of createReadStream(file, { highWaterMark: chunkBytes })) {
    let buffer: Buffer = carry.length === 0 ? (data as Buffer) : Buffer.concat([carry, data as Buffer]);
    if (first) {
      first = false;
      if (buffer.subarray(0, 3).equals(BOM)) buffer = buffer.subarray(3);
    }
    if (buffer.length < chunkBytes) {
      carry = buffer;
      continue;
    }
    const cut = lastRecordBoundary(buffer);
    if (cut === -1) {
      if (buffer.length > maxRecordBytes) throw new ImportFileError(`a record runs over ${maxRecordBytes} bytes: an unclosed quote?`);
      carry = buffer;
      continue;
    }
    // A copy, so the chunk does not pin the stream's larger buffers while it waits for a thread.
    yield Buffer.from(buffer.subarray(0, cut));
    carry = Buffer.from(buffer.subarray(cut));
  }
  if (carry.length > 0) yield carry;
}
