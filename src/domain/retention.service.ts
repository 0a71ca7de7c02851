// Retention (RETENTION_DAYS): removes what only piles up, once it is older than the retention —
// the built-in mailbox, the email and webhook delivery logs, jobs that used up their attempts,
// the manage tokens of registrations cancelled that long ago, and upload files whose import is
// over. Registrations, their events (their history) and imports' reports are kept, and so is
// whatever an email job that may still run needs, however old (retention.queries.ts). Each table
// is worked off in batches of BATCH_ROWS, one short transaction each, with a pause between them,
// so a large backlog never holds a long lock or a long transaction. Idempotency-Key answers have
// a retention of their own, 48 hours (deleteExpiredIdempotencyKeys).
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from '../db/database.ts';
import {
  type CancelledMark, deleteOldDeadJobs, deleteOldEmailDeliveries, deleteOldMailbox,
  deleteIdempotencyKeysOlderThan, deleteOldWebhookDeliveries, deleteTokensOfCancelled, findUnfinishedImports, oldestLiveEmailJob,
} from '../db/queries/retention.queries.ts';

const BATCH_ROWS = 1_000;
const PAUSE_MS = 20;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Idempotency-Key answers are replayed this long: at least the 24 hours the IETF draft asks for. */
const IDEMPOTENCY_KEEP_HOURS = 48;
// The names acceptImport gives uploads: <import id>.csv, and <import id>.csv.part while streaming.
const UPLOAD_NAME = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.csv(\.part)?$/;

export type RetentionOptions = { retentionDays: number; dataDir: string; signal?: AbortSignal };

export type RetentionReport = {
  mailbox: number;
  emailDeliveries: number;
  webhookDeliveries: number;
  deadJobs: number;
  manageTokens: number;
  uploads: number;
};

export type Retention = { run(options: RetentionOptions): Promise<RetentionReport> };

/** Deletes the stored answers of Idempotency-Keys older than IDEMPOTENCY_KEEP_HOURS; answers how many. */
export async function deleteExpiredIdempotencyKeys(sql: Sql): Promise<number> {
  return deleteIdempotencyKeysOlderThan(sql, IDEMPOTENCY_KEEP_HOURS);
}

/** Deletes batch after batch until a batch comes back short; answers the rows deleted. */
async function drain(deleteBatch: (limit: number) => Promise<number>, signal: AbortSignal | undefined): Promise<number> {
  let total = 0;
  for (;;) {
    signal?.throwIfAborted();
    const deleted = await deleteBatch(BATCH_ROWS);
    total += deleted;
    if (deleted < BATCH_ROWS) return total;
    await sleep(PAUSE_MS, undefined, { signal });
  }
}

/**
 * Upload files older than the retention whose import is done, failed, or was never recorded (a
 * crash between the upload and its row). A file of an import still queued or running stays,
 * however old; files named otherwise are not ours and stay too.
 */
async function removeOldUploads(sql: Sql, options: RetentionOptions): Promise<number> {
  const directory = path.join(options.dataDir, 'uploads');
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  const before = Date.now() - options.retentionDays * DAY_MS;
  let removed = 0;
  for (let start = 0; start < names.length; start += BATCH_ROWS) {
    options.signal?.throwIfAborted();
    const old: { file: string; id: string }[] = [];
    for (const name of names.slice(start, start + BATCH_ROWS)) {
      const id = UPLOAD_NAME.exec(name)?.[1];
      if (id === undefined) continue;
      const file = path.join(directory, name);
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile() && info.mtimeMs < before) old.push({ file, id });
    }
    const unfinished = await findUnfinishedImports(sql, old.map((o) => o.id));
    for (const { file, id } of old) {
      if (unfinished.has(id)) continue;
      await rm(file, { force: true });
      removed += 1;
    }
  }
  return removed;
}

/** One retention pass over everything it owns. Keeps where it got to among cancelled registrations. */
export function createRetention(sql: Sql): Retention {
  let cancelledMark: CancelledMark | undefined;
  return {
    async run(options) {
      const { retentionDays: days, signal } = options;
      // Taken once for the pass: a job queued later was queued after it, so its rows are newer.
      const emails = { olderThanDays: days, liveEmailsSince: await oldestLiveEmailJob(sql) };
      const mailbox = await drain((limit) => deleteOldMailbox(sql, { ...emails, limit }), signal);
      const emailDeliveries = await drain((limit) => deleteOldEmailDeliveries(sql, { ...emails, limit }), signal);
      const webhookDeliveries = await drain((limit) => deleteOldWebhookDeliveries(sql, { olderThanDays: days, limit }), signal);
      const deadJobs = await drain((limit) => deleteOldDeadJobs(sql, { olderThanDays: days, limit }), signal);
      let manageTokens = 0;
      for (;;) {
        signal?.throwIfAborted();
        const step = await deleteTokensOfCancelled(sql, { ...emails, limit: BATCH_ROWS }, cancelledMark);
        manageTokens += step.deleted;
        cancelledMark = step.mark;
        if (step.registrations < BATCH_ROWS) break;
        await sleep(PAUSE_MS, undefined, { signal });
      }
      const uploads = await removeOldUploads(sql, options);
      return { mailbox, emailDeliveries, webhookDeliveries, deadJobs, manageTokens, uploads };
    },
  };
}
