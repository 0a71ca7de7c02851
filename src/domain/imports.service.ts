// Bulk imports as the admin sees them: an upload streamed to DATA_DIR/uploads (never held whole
// in memory, cut off at the size limit), its header checked, then an import row and its job
// committed together. A refused upload leaves no file and no row behind. Uploads hold students'
// names and addresses: files 0600 in a 0700 directory, readable by the service's user alone.
// A disk (or quota) too full for the upload is the DomainError 'storage-full': 503 with
// Retry-After, as for a database out of disk, since freeing space lets the same upload through.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql } from '../db/database.ts';
import { findImport, type ImportRow, insertImport, listImports } from '../db/queries/imports.queries.ts';
import { headerRecord, ImportFileError } from './csv-chunks.ts';
import { readHeader } from './csv-header.ts';
import { DomainError } from './domain-error.ts';

class TooLarge extends Error {}

function limitBytes(maxBytes: number): Transform & { bytes: number } {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counter.bytes += chunk.length;
      if (counter.bytes > maxBytes) return callback(new TooLarge());
      callback(null, chunk);
    },
  }) as Transform & { bytes: number };
  counter.bytes = 0;
  return counter;
}

/** Reads the start of the file until its first record ends, and checks it is a valid header. */
async function checkHeader(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read({ buffer: Buffer.alloc(64 * 1024), position: 0 });
    const start = buffer.subarray(0, bytesRead);
    if (bytesRead === 0) throw new ImportFileError('the file is empty: line 1 must be a header with the columns name,email,course');
    // One linear pass over at most 64 KiB: cheap enough for the request's event loop.
    const { from, scan } = headerRecord(start, start.length);
    if (scan.error !== null) throw new ImportFileError(`line 1 is not a CSV header: ${scan.error}`);
    readHeader(start.subarray(from, scan.end).toString('utf8'));
  } finally {
    await handle.close();
  }
}

/** ENOSPC: no room left on the file system; EDQUOT: the user's disk quota is used up. */
function isStorageFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function storageFull(error: unknown): DomainError {
  return new DomainError('storage-full', 'There is no room to store the import file right now; retry shortly', { cause: error });
}

export async function acceptImport(sql: Sql, options: { dataDir: string; maxBytes: number }, upload: Readable): Promise<ImportRow> {
  const id = randomUUID();
  const directory = path.join(options.dataDir, 'uploads');
  try {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    await chmod(directory, 0o700); // mkdir keeps an existing one's mode (the umask's 0755, say)
  } catch (error) {
    if (isStorageFull(error)) throw storageFull(error);
    throw error;
  }
  const partial = path.join(directory, `${id}.csv.part`);
  const file = path.join(directory, `${id}.csv`);
  const counter = limitBytes(options.maxBytes);
  try {
    await pipeline(upload, counter, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    await checkHeader(partial);
    await rename(partial, file);
    return await insertImport(sql, { id, filePath: file, fileBytes: counter.bytes });
  } catch (error) {
    await rm(partial, { force: true });
    await rm(file, { force: true });
    if (error instanceof TooLarge) throw new DomainError('payload-too-large', `An import file may have at most ${options.maxBytes} bytes (IMPORT_MAX_BYTES)`);
    if (error instanceof ImportFileError) throw new DomainError('invalid-import', error.message);
    if (isStorageFull(error)) throw storageFull(error);
    throw error;
  }
}

export async function getImport(sql: Sql, id: string): Promise<ImportRow> {
  const row = await findImport(sql, id);
  if (!row) throw new DomainError('import-not-found', `There is no import "${id}"`);
  return row;
}

export async function getImports(sql: Sql, limit: number): Promise<ImportRow[]> {
  return listImports(sql, limit);
}
