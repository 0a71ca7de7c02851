// Owns the `queue` scenario's checks over what it read back and observed, as pure functions: every
// admission in rank order, the random order recomputed from the revealed seed, and the error of
// the estimates against the time each place was admitted.
import { createHash } from 'node:crypto';
import { percentile } from './stats.ts';

/** A place as the bench reads it back after the run. */
export type PlaceFacts = {
  id: string;
  emailKey: string;
  rank: number | null;
  status: string;
  /** Epoch ms; null: never admitted. */
  admittedAt: number | null;
  registrationId: string | null;
  joinSeq: number;
};

export type OrderCheck = { checked: number; outOfOrder: number; example: string | undefined };

/**
 * Seats in queue order: every admitted place was admitted no earlier than every place ranked ahead
 * of it, and no place ahead of it still waits or was sold out (a place that left, or whose
 * admission expired, was passed over: it was admitted or had gone).
 */
export function checkAdmissionOrder(places: readonly PlaceFacts[]): OrderCheck {
  const ranked = places.filter((p) => p.rank !== null).sort((a, b) => a.rank! - b.rank!);
  let latestAhead = Number.NEGATIVE_INFINITY;
  let notAdmittedAhead: PlaceFacts | undefined;
  let checked = 0;
  let outOfOrder = 0;
  let example: string | undefined;
  for (const place of ranked) {
    if (place.admittedAt !== null) {
      checked += 1;
      const wrong = notAdmittedAhead !== undefined
        ? `rank ${place.rank} admitted while rank ${notAdmittedAhead.rank} (${notAdmittedAhead.status}) ahead of it never was`
        : place.admittedAt < latestAhead ? `rank ${place.rank} admitted ${Math.round(latestAhead - place.admittedAt)} ms before a place ranked ahead of it` : undefined;
      if (wrong) {
        outOfOrder += 1;
        example ??= wrong;
      }
      latestAhead = Math.max(latestAhead, place.admittedAt);
    } else if (place.status !== 'left') {
      notAdmittedAhead ??= place;
    }
  }
  return { checked, outOfOrder, example };
}

/** The random order's key of a place, as queue-places.sql defines it: sha256(seed || place id). */
export function shuffleKey(seed: Buffer, placeId: string): Buffer {
  return createHash('sha256').update(seed).update(placeId, 'utf8').digest();
}

export type RandomOrderCheck = {
  commitmentHolds: boolean;
  checked: number;
  mismatches: number;
  /** Places the joins' answers named that are not stored (must be 0), and places stored whose
   *  join was not answered (a timeout after the commit: they joined, the bench never learned it). */
  answeredNotStored: number;
  storedNotAnswered: number;
};

/**
 * The order recomputed from the seed shown after opening and the places that joined before it
 * (their ids; ties of the key fall back to the join order), against the ranks stored; the seed
 * against the SHA-256 commitment shown before opening; and the joins' answers against the places.
 */
export function checkRandomOrder(seedHex: string, commitmentHex: string, joinedIds: readonly string[], places: readonly PlaceFacts[]): RandomOrderCheck {
  const seed = Buffer.from(seedHex, 'hex');
  const commitmentHolds = createHash('sha256').update(seed).digest('hex') === commitmentHex;
  const keyed = places.map((p) => ({ place: p, key: shuffleKey(seed, p.id) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key) || a.place.joinSeq - b.place.joinSeq);
  const mismatches = keyed.filter((entry, i) => entry.place.rank !== i + 1).length;
  return { commitmentHolds, checked: keyed.length, mismatches, ...compareJoins(joinedIds, places) };
}

function compareJoins(joinedIds: readonly string[], places: readonly PlaceFacts[]): Pick<RandomOrderCheck, 'answeredNotStored' | 'storedNotAnswered'> {
  const stored = new Set(places.map((p) => p.id));
  const answered = new Set(joinedIds);
  return { answeredNotStored: joinedIds.filter((id) => !stored.has(id)).length, storedNotAnswered: places.filter((p) => !answered.has(p.id)).length };
}

/** Arrival order: the ranks follow the order the joins were stored in (join_seq). */
export function checkArrivalOrder(joinedIds: readonly string[], places: readonly PlaceFacts[]): RandomOrderCheck {
  const ranked = [...places].sort((a, b) => a.joinSeq - b.joinSeq);
  return { commitmentHolds: true, checked: ranked.length, mismatches: ranked.filter((p, i) => p.rank !== i + 1).length, ...compareJoins(joinedIds, places) };
}

/** One estimate a student saw: when (epoch ms) and estimatedWaitSeconds. */
export type EtaReading = { placeId: string; at: number; estimatedSeconds: number };

export type EtaErrors = {
  readings: number;
  /** |estimate - actual| / actual: median and p90 (a fraction). */
  medianRelative: number;
  p90Relative: number;
  /** |estimate - actual| in seconds. */
  medianAbsoluteSeconds: number;
};

export type EtaSummary = { firstMinute: EtaErrors; afterFirstMinute: EtaErrors; afterFirstMinuteLongWaits: EtaErrors; longWaitSeconds: number };

function errorsOf(pairs: readonly { relative: number; absolute: number }[]): EtaErrors {
  const relative = pairs.map((p) => p.relative).sort((a, b) => a - b);
  const absolute = pairs.map((p) => p.absolute).sort((a, b) => a - b);
  return { readings: pairs.length, medianRelative: percentile(relative, 50), p90Relative: percentile(relative, 90), medianAbsoluteSeconds: percentile(absolute, 50) };
}

/**
 * Each reading against the actual wait (admitted_at minus the reading's time); readings of places
 * never admitted are left out. Split at one minute after `openedAt`; the long-wait figure keeps
 * only readings with at least `longWaitSeconds` still to wait (an estimate is whole seconds, so a
 * wait of one or two seconds has a large relative error whatever the rate).
 */
export function etaErrors(readings: readonly EtaReading[], admittedAt: ReadonlyMap<string, number>, openedAt: number, longWaitSeconds = 10): EtaSummary {
  const early: { relative: number; absolute: number }[] = [];
  const late: { relative: number; absolute: number }[] = [];
  const lateLong: { relative: number; absolute: number }[] = [];
  for (const reading of readings) {
    const admitted = admittedAt.get(reading.placeId);
    if (admitted === undefined) continue;
    const actual = Math.max(0.001, (admitted - reading.at) / 1000);
    const absolute = Math.abs(reading.estimatedSeconds - actual);
    const pair = { relative: absolute / actual, absolute };
    if (reading.at - openedAt < 60_000) early.push(pair);
    else {
      late.push(pair);
      if (actual >= longWaitSeconds) lateLong.push(pair);
    }
  }
  return { firstMinute: errorsOf(early), afterFirstMinute: errorsOf(late), afterFirstMinuteLongWaits: errorsOf(lateLong), longWaitSeconds };
}
