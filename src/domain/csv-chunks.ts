// Where the records of an import file begin and end, and which of them quote badly: one pass
// over the bytes, each byte looked at a bounded number of times, whatever the quotes. Runs on
// the worker threads (src/runtime/csv-chunk.thread.ts) and, for an upload's header, in
// imports.service.ts.
//
// RFC 4180: a field is quoted only when its first character (after spaces) is a quote; inside,
// a quote is doubled; the closing quote is followed by a comma or the end of the record. A
// record that breaks this (a quote inside an unquoted field, text after a closing quote, or a
// quote that opens a field and is not closed within maxRecordBytes or before the end of the
// input) is a bad record: reported at the line it starts on, and reading goes on at the next
// line. Both decisions look only at bytes from the record's start to at most maxRecordBytes
// later, so the planner (whole file) and a chunk's parser (that chunk) decide alike.

export const NEWLINE = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const SPACE = 0x20;
const TAB = 0x09;
export const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A record of more than this many bytes is refused: a quote that opened and never closed. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

export class ImportFileError extends Error {
  override name = 'ImportFileError';
}

type RecordScan = { end: number; error: null } | { end: -1; error: string };

const STRAY_QUOTE = 'not valid CSV: a quote inside an unquoted field (quote the whole field and double its quotes: "Ann ""Annie"" Lee")';
const TEXT_AFTER_QUOTE = 'not valid CSV: text after a quoted field\'s closing quote';

function unclosed(maxRecordBytes: number): string {
  return `not valid CSV: a quote opens a field and is not closed within ${maxRecordBytes} bytes or before the end of the file (the import goes on at the next line)`;
}

const isBlank = (byte: number | undefined) => byte === SPACE || byte === TAB;

/**
 * Bytes scanRecord has looked at in this thread (or process), for tests that check a file costs
 * one pass: reading a number and adding to it per record, not per byte.
 */
export const scanCounter = { bytes: 0 };

function scanned(bytes: number, scan: RecordScan): RecordScan {
  scanCounter.bytes += bytes;
  return scan;
}

/**
 * The record that starts at `start` (a record boundary) in bytes[0, end), end being the end of
 * the input: where it ends (just after its newline, or `end`), or why it is bad.
 */
export function scanRecord(bytes: Uint8Array, start: number, end: number, maxRecordBytes: number): RecordScan {
  const stop = Math.min(end, start + maxRecordBytes);
  const capped = stop < end; // bytes go on past the cap: reaching `stop` means the record is too long
  let i = start;
  for (;;) {
    while (i < stop && isBlank(bytes[i])) i += 1;
    if (i < stop && bytes[i] === QUOTE) {
      i += 1;
      for (;;) {
        while (i < stop && bytes[i] !== QUOTE) i += 1;
        if (i >= stop || (i + 1 === stop && capped)) return scanned(i - start, { end: -1, error: unclosed(maxRecordBytes) });
        if (bytes[i + 1] === QUOTE && i + 1 < stop) {
          i += 2; // a doubled quote: one quote of data
          continue;
        }
        i += 1; // the closing quote
        break;
      }
      while (i < stop && isBlank(bytes[i])) i += 1;
      // CRLF, or a CR that ends the input.
      if (i < stop && bytes[i] === CR && (i + 1 < stop ? bytes[i + 1] === NEWLINE : !capped)) i += 1;
      if (i >= stop) return scanned(i - start, capped ? { end: -1, error: unclosed(maxRecordBytes) } : { end: i, error: null });
      if (bytes[i] === COMMA) {
        i += 1;
        continue;
      }
      if (bytes[i] === NEWLINE) return scanned(i - start, { end: i + 1, error: null });
      return scanned(i - start, { end: -1, error: TEXT_AFTER_QUOTE });
    }
    let byte = -1;
    while (i < stop) {
      byte = bytes[i]!;
      if (byte === COMMA || byte === NEWLINE || byte === QUOTE) break;
      i += 1;
    }
    if (i >= stop) return scanned(i - start, capped ? { end: -1, error: unclosed(maxRecordBytes) } : { end: i, error: null });
    if (byte === QUOTE) return scanned(i - start, { end: -1, error: STRAY_QUOTE });
    i += 1;
    if (byte === NEWLINE) return scanned(i - start, { end: i, error: null });
  }
}

/** Newlines in bytes[from, to). */
export function countNewlines(bytes: Buffer, from: number, to: number): number {
  let count = 0;
  const view = bytes.subarray(0, to); // bounded: indexOf never looks past `to`
  for (let at = view.indexOf(NEWLINE, from); at !== -1; at = view.indexOf(NEWLINE, at + 1)) count += 1;
  return count;
}

/** Just after the first newline at or after `from` in bytes[0, end), or `end` when there is none. */
export function nextLine(bytes: Buffer, from: number, end: number): number {
  const at = bytes.subarray(0, end).indexOf(NEWLINE, from);
  return at === -1 ? end : at + 1;
}

/** Where the header record of the start of a file ends (its BOM skipped), or why it is bad. */
export function headerRecord(start: Buffer, maxRecordBytes: number): { from: number; scan: RecordScan } {
  const from = start.subarray(0, 3).equals(BOM) ? 3 : 0;
  return { from, scan: scanRecord(start, from, start.length, maxRecordBytes) };
}
