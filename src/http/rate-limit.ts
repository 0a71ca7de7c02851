// Per-client rate limits, counted across every worker and instance in PostgreSQL (the one store
// they all share). Fixed one-minute windows. Each process decides from the last known total plus
// what it admitted since, and every 100 ms, in one round trip, sends its counts (a batched
// upsert) and learns the totals: of its own clients, and of every client over the limit in the
// current window, wherever it was counted. The hot path never waits for the database. The price
// is a bound, not an exact count: a client bursting faster than the flush may get up to
// RATE_LIMIT_PER_MINUTE from each process once before the totals arrive; after that every
// process, including one the client never reached, refuses it until the window ends.
// A client is its address's bucket (an IPv6 /64: client-address.ts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Sql } from '../db/database.ts';
import { forgetOldRateLimitWindows, shareRateLimitCounts } from '../domain/rate-limits.service.ts';
import { rateLimitBucket } from './client-address.ts';
import { problem, sendProblem } from './problem.ts';

const WINDOW_MS = 60_000;
const FLUSH_INTERVAL_MS = 100;
const CLEANUP_EVERY_FLUSHES = 600;

/**
 * known: the shared total last read; sending: counted here and on the way to the database, so
 * the requests admitted during that round trip still count until its total arrives; pending:
 * not sent yet.
 */
type Counter = { known: number; sending: number; pending: number };

/** A budget that only failures use up (wrong bearer tokens): the right token costs nothing. */
export type FailureBudget = {
  /** Answers 429 and returns true when this client's failures used up the window's budget. */
  refused(request: FastifyRequest, reply: FastifyReply): boolean;
  /** Counts one failure of this client. */
  failed(request: FastifyRequest): void;
};

export type RateLimiter = {
  /** A Fastify onRequest hook for one class of route (its own budget per client). */
  hook(routeClass: string): (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /** A budget of its own per client for one class of failures. */
  failures(routeClass: string): FailureBudget;
  stop(): Promise<void>;
};

export function createRateLimiter(sql: Sql, perMinute: number, onError: (error: unknown) => void): RateLimiter {
  const counters = new Map<string, Counter>(); // `${window}|${bucket}`
  let flushes = 0;
  let flushing: Promise<void> = Promise.resolve();

  const flush = async () => {
    const window = Math.floor(Date.now() / WINDOW_MS);
    const batch: { key: string; bucket: string; windowStart: Date; count: number }[] = [];
    for (const [key, counter] of counters) {
      const [windowText, bucket] = [key.slice(0, key.indexOf('|')), key.slice(key.indexOf('|') + 1)];
      if (Number(windowText) < window) {
        counters.delete(key); // a past window: its counts no longer matter
        continue;
      }
      if (counter.pending > 0) batch.push({ key, bucket, windowStart: new Date(Number(windowText) * WINDOW_MS), count: counter.pending });
    }
    for (const item of batch) {
      const counter = counters.get(item.key)!;
      counter.pending -= item.count;
      counter.sending += item.count;
    }
    let sent = false;
    try {
      // Even with nothing to add: the clients over the limit elsewhere are learnt here.
      const totals = await shareRateLimitCounts(sql, batch, { windowStart: new Date(window * WINDOW_MS), limit: perMinute });
      for (const total of totals) {
        const totalWindow = Math.floor(total.window_start.getTime() / WINDOW_MS);
        if (totalWindow < window) continue;
        const key = `${totalWindow}|${total.bucket}`;
        let counter = counters.get(key);
        if (!counter) {
          counter = { known: 0, sending: 0, pending: 0 };
          counters.set(key, counter);
        }
        // Totals only grow within a window.
        counter.known = Math.max(counter.known, total.count);
      }
      // The totals just read include what was sent.
      for (const item of batch) {
        const counter = counters.get(item.key);
        if (counter) counter.sending -= item.count;
      }
      sent = true;
      if (batch.length > 0 && ++flushes % CLEANUP_EVERY_FLUSHES === 0) await forgetOldRateLimitWindows(sql);
    } catch (error) {
      if (sent) return onError(error); // the cleanup failed: the counts are in
      // Counts that did not reach the database are counted again next time.
      for (const item of batch) {
        const counter = counters.get(item.key);
        if (counter) {
          counter.sending -= item.count;
          counter.pending += item.count;
        }
      }
      // A failed read alone (the database restarting, say) lost nothing: no log line every 100 ms.
      if (batch.length > 0) onError(error);
    }
  };
  const timer = setInterval(() => {
    flushing = flushing.then(flush);
  }, FLUSH_INTERVAL_MS);
  timer.unref();

  const counterOf = (routeClass: string, request: FastifyRequest, now: number): Counter => {
    const key = `${Math.floor(now / WINDOW_MS)}|${routeClass}:${rateLimitBucket(request.ip)}`;
    let counter = counters.get(key);
    if (!counter) {
      counter = { known: 0, sending: 0, pending: 0 };
      counters.set(key, counter);
    }
    return counter;
  };
  const refuse = (reply: FastifyReply, now: number, what: string) => {
    const retryAfter = Math.max(1, Math.ceil(((Math.floor(now / WINDOW_MS) + 1) * WINDOW_MS - now) / 1000));
    reply.header('retry-after', String(retryAfter));
    return sendProblem(reply, problem(429, 'rate-limited', `At most ${perMinute} ${what} a minute per client here; retry in ${retryAfter} s`));
  };

  return {
    hook(routeClass) {
      return async function rateLimit(request, reply) {
        const now = Date.now();
        const counter = counterOf(routeClass, request, now);
        if (counter.known + counter.sending + counter.pending >= perMinute) return refuse(reply, now, 'requests');
        counter.pending += 1;
        return undefined;
      };
    },
    failures(routeClass) {
      return {
        refused(request, reply) {
          const now = Date.now();
          const counter = counterOf(routeClass, request, now);
          if (counter.known + counter.sending + counter.pending < perMinute) return false;
          void refuse(reply, now, 'failed attempts');
          return true;
        },
        failed(request) {
          counterOf(routeClass, request, Date.now()).pending += 1;
        },
      };
    },
    async stop() {
      clearInterval(timer);
      await flushing;
      await flush();
    },
  };
}
