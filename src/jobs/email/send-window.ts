// The email send window: how many emails the job process has in flight, adapted to the mail
// server by AIMD (additive increase, multiplicative decrease, as TCP's congestion window, RFC 5681)
// under a hard ceiling (EMAIL_CONCURRENCY). It grows by one after a window's worth of sends that
// filled the window and came back within the latency bound; it halves on a 4xx reply, a timeout
// or a refused connection, once per window of sends; it is never below 1 nor above the ceiling.
import { createLimiter, type Limiter } from '../job-entries.ts';

/** A send is "within the bound" up to this multiple of the baseline latency... */
export const LATENCY_TOLERANCE = 2;
/** ...plus this, so that a server answering in 1 ms is not called slow at 3 ms. */
export const LATENCY_SLACK_MS = 50;
/**
 * The baseline is the lowest latency of the last rounds (a round: a window's worth of sends), as
 * BBR's min-RTT filter: a server that has become slower for good is the new baseline after these
 * many rounds, and the window may grow again.
 */
export const BASELINE_ROUNDS = 10;

export type WindowState = Readonly<{
  window: number;
  ceiling: number;
  /** The lowest latency of the rounds in `roundMinsMs` and of the current one; undefined before the first send returns. */
  baselineMs: number | undefined;
  /** The lowest latency of each of the last BASELINE_ROUNDS rounds, newest last. */
  roundMinsMs: readonly number[];
  /** Successful sends counted in the current round, their lowest latency, and whether every one filled the window within the bound. */
  roundSends: number;
  roundMinMs: number;
  roundHeld: boolean;
  /** Halvings so far. A send begun before the last halving reports the congestion that caused it: it does not halve again. */
  epoch: number;
}>;

export function openWindow(ceiling: number, initial = ceiling): WindowState {
  if (!Number.isInteger(ceiling) || ceiling < 1) throw new RangeError(`the send window's ceiling must be a positive integer, got ${ceiling}`);
  return { window: clamp(initial, ceiling), ceiling, baselineMs: undefined, roundMinsMs: [], roundSends: 0, roundMinMs: Infinity, roundHeld: true, epoch: 0 };
}

function clamp(window: number, ceiling: number): number {
  return Math.min(ceiling, Math.max(1, Math.floor(window)));
}

/** The latency up to which a send counts as "the server keeps up". */
export function latencyBoundMs(baselineMs: number): number {
  return baselineMs * LATENCY_TOLERANCE + LATENCY_SLACK_MS;
}

/**
 * A send the server accepted, `latencyMs` after it began; `windowFull`: the sends in flight filled
 * the window at some moment of this round. Sends that never filled it say nothing about a larger
 * one (RFC 7661): they feed the baseline, and the round does not grow the window.
 */
export function afterSuccess(state: WindowState, send: { latencyMs: number; windowFull: boolean }): WindowState {
  const within = state.baselineMs === undefined || send.latencyMs <= latencyBoundMs(state.baselineMs);
  const roundSends = state.roundSends + 1;
  const roundMinMs = Math.min(state.roundMinMs, send.latencyMs);
  const roundHeld = state.roundHeld && within && send.windowFull;
  if (roundSends < state.window) {
    return { ...state, baselineMs: Math.min(state.baselineMs ?? Infinity, send.latencyMs), roundSends, roundMinMs, roundHeld };
  }
  const roundMinsMs = [...state.roundMinsMs, roundMinMs].slice(-BASELINE_ROUNDS);
  return {
    ...state,
    window: roundHeld ? clamp(state.window + 1, state.ceiling) : state.window,
    baselineMs: Math.min(...roundMinsMs),
    roundMinsMs,
    roundSends: 0,
    roundMinMs: Infinity,
    roundHeld: true,
  };
}

/** A 4xx reply, a timeout or a refused connection, to a send begun at `epoch`. */
export function afterCongestion(state: WindowState, epoch: number): WindowState {
  if (epoch !== state.epoch) return state;
  return { ...state, window: clamp(state.window / 2, state.ceiling), epoch: state.epoch + 1, roundSends: 0, roundMinMs: Infinity, roundHeld: true };
}

/**
 * RFC 5321 section 4.2.1: a 4yz reply says "not now" (421: the server is closing the channel,
 * 451/452: local trouble or no room); nodemailer's ETIMEDOUT, ECONNECTION and ESOCKET are a
 * connection that timed out, was refused or dropped. Each is a sign to send less, except a 4yz
 * other than 421 to RCPT TO: that is about one recipient (greylisting, a mailbox busy), and the
 * server is answering.
 */
export function isCongestion(error: unknown): boolean {
  const { responseCode, code, command } = (error ?? {}) as { responseCode?: number; code?: string; command?: string };
  if (typeof responseCode === 'number') {
    return responseCode >= 400 && responseCode < 500 && (responseCode === 421 || command !== 'RCPT TO');
  }
  return code === 'ETIMEDOUT' || code === 'ECONNECTION' || code === 'ESOCKET';
}

/** What one send tells the window, taken as the send begins. */
export type SendTicket = { readonly epoch: number; readonly startedAt: number };

/** What a transport reports to the window about each of its sends. */
export type SendFeedback = {
  begin(): SendTicket;
  succeeded(ticket: SendTicket): void;
  failed(ticket: SendTicket, error: unknown): void;
};

/**
 * The email limiter: a call waits for room in the window. `setLimit` (the rush yield) puts a cap
 * and a pace on top of the window; `setLimit(ceiling)` lifts the cap.
 */
export type SendWindow = Limiter & SendFeedback & { readonly size: number; readonly ceiling: number };

export function createSendWindow(options: { ceiling: number; initial?: number; onResize?: (window: number) => void }): SendWindow {
  let state = openWindow(options.ceiling, options.initial);
  let cap = state.ceiling;
  let paceMs = 0;
  let inFlight = 0;
  /** Whether the calls in flight filled the window at some moment of the current round. */
  let filled = false;
  const limiter = createLimiter(state.window);
  const apply = (next: WindowState) => {
    const resized = next.window !== state.window;
    state = next;
    if (state.roundSends === 0) filled = inFlight >= state.window;
    if (!resized) return;
    limiter.setLimit(Math.min(state.window, cap), paceMs);
    options.onResize?.(state.window);
  };
  const limited = <T>(run: () => Promise<T>): Promise<T> => limiter(async () => {
    inFlight += 1;
    if (inFlight >= state.window) filled = true;
    try {
      return await run();
    } finally {
      inFlight -= 1;
    }
  });
  const feedback = {
    setLimit(limit: number, minIntervalMs = 0) {
      cap = Math.max(1, limit);
      paceMs = minIntervalMs;
      limiter.setLimit(Math.min(state.window, cap), paceMs);
    },
    begin(): SendTicket {
      return { epoch: state.epoch, startedAt: performance.now() };
    },
    succeeded(ticket: SendTicket) {
      apply(afterSuccess(state, { latencyMs: performance.now() - ticket.startedAt, windowFull: filled }));
    },
    failed(ticket: SendTicket, error: unknown) {
      if (isCongestion(error)) apply(afterCongestion(state, ticket.epoch));
    },
  };
  // Getters defined as such: Object.assign would copy their first values.
  return Object.defineProperties(Object.assign(limited, feedback), {
    size: { get: () => state.window, enumerable: true },
    ceiling: { get: () => state.ceiling, enumerable: true },
  }) as SendWindow;
}
