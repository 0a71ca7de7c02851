// SPEC invariants 9 (the term limit, waitlist offers) and 10 (the history) as
// test/support/invariants.ts checks them, fed a good term and broken ones: each break is reported
// by its own check.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkInvariants, INVARIANT_CHECKS, type HistoryEvent, type InvariantSnapshot, type StoredRegistration } from '../support/invariants.ts';

const registration = (id: string, courseId: string, emailKey: string, status: StoredRegistration['status'], seq: number, waitlistPosition: number | null = null): StoredRegistration =>
  ({ id, courseId, emailKey, status, seq, waitlistPosition });

let nextEvent = 1;
const entry = (registrationId: string, courseId: string, kind: string, actor: string | null = kind === 'promoted' ? 'system' : 'student'): HistoryEvent =>
  ({ id: nextEvent++, registrationId, courseId, kind, actor, reason: actor === null ? null : `${kind}: because` });

/** Term t (limit 2), courses a (1 seat, 1 waitlist place) and b: ann holds a seat in a and one in
 *  b, having cancelled one in c; bob was waitlisted in a, promoted when ann's first seat freed. */
function goodSnapshot(): InvariantSnapshot {
  nextEvent = 1;
  return {
    courses: [
      { id: 'a', capacity: 1, waitlistCapacity: 1, enrolled: 1, waitlisted: 0, term: 't' },
      { id: 'b', capacity: 5, waitlistCapacity: 0, enrolled: 1, waitlisted: 0, term: 't' },
      { id: 'c', capacity: 5, waitlistCapacity: 0, enrolled: 0, waitlisted: 0, term: 't' },
    ],
    registrations: [
      registration('r1', 'a', 'ann', 'cancelled', 1),
      registration('r2', 'a', 'bob', 'enrolled', 2),
      registration('r3', 'b', 'ann', 'enrolled', 3),
      registration('r4', 'c', 'ann', 'cancelled', 4),
    ],
    terms: [{ id: 't', maxCoursesPerStudent: 2, counts: [{ emailKey: 'ann', active: 1 }, { emailKey: 'bob', active: 1 }] }],
    history: [
      entry('r1', 'a', 'enrolled'), entry('r2', 'a', 'waitlisted'), entry('r3', 'b', 'enrolled'), entry('r4', 'c', 'enrolled', 'import'),
      entry('r1', 'a', 'cancelled', 'admin'), entry('r2', 'a', 'promoted'), entry('r4', 'c', 'cancelled'),
    ],
  };
}

const checksFailed = (snapshot: InvariantSnapshot) => [...new Set(checkInvariants(snapshot).map((v) => v.check))];
const LIMIT = 'no student above a term\'s limit; term counts equal the rows stored';
const HISTORY = 'every registration change has exactly one history entry';
const HELD = 'held seats within capacity; the offered counter equals the open offers';
const OFFER_ONCE = 'each offer ends once: accepted, declined, expired or cancelled';

describe('invariants 9 (term limit) and 10 (history)', () => {
  test('they are among the checks, in this order, last', () => {
    assert.deepEqual(INVARIANT_CHECKS.slice(-4), [LIMIT, HISTORY, HELD, OFFER_ONCE]);
    assert.equal(INVARIANT_CHECKS.length, 20);
  });

  test('a good term and its history: no violation', () => {
    assert.deepEqual(checkInvariants(goodSnapshot()), []);
  });

  test('a student above the limit, counted from the rows', () => {
    const snapshot = goodSnapshot();
    snapshot.terms![0]!.maxCoursesPerStudent = 1;
    snapshot.registrations[3]!.status = 'enrolled';
    snapshot.courses[2]!.enrolled = 1;
    snapshot.terms![0]!.counts[0]!.active = 2;
    snapshot.history!.pop();
    const violations = checkInvariants(snapshot);
    assert.deepEqual(checksFailed(snapshot), [LIMIT]);
    assert.match(violations[0]!.detail, /1 students above the limit 1, e\.g\. ann with 2/);
  });

  test('a stored count that is not the rows', () => {
    const snapshot = goodSnapshot();
    snapshot.terms![0]!.counts[1]!.active = 0;
    assert.deepEqual(checksFailed(snapshot), [LIMIT]);
  });

  test('a course without a term is not counted in one', () => {
    const snapshot = goodSnapshot();
    snapshot.courses[1]!.term = null;
    assert.deepEqual(checksFailed(snapshot), [LIMIT], 'ann\'s count of 1 is now more than her rows in t (none)');
    snapshot.terms![0]!.counts[0]!.active = 0;
    assert.deepEqual(checkInvariants(snapshot), []);
  });

  test('a change without its entry, and a change entered twice', () => {
    const missing = goodSnapshot();
    missing.history = missing.history!.filter((e) => !(e.registrationId === 'r2' && e.kind === 'promoted'));
    assert.deepEqual(checksFailed(missing), [HISTORY]);
    const twice = goodSnapshot();
    twice.history!.push(entry('r3', 'b', 'enrolled'));
    assert.deepEqual(checksFailed(twice), [HISTORY]);
    const none = goodSnapshot();
    none.history = none.history!.filter((e) => e.registrationId !== 'r3');
    assert.match(checkInvariants(none)[0]!.detail, /r3 \(enrolled\): no entry at all/);
  });

  test('an entry without who or why, a promotion by anyone but the system, an entry of another course', () => {
    const anonymous = goodSnapshot();
    anonymous.history![2]!.actor = null;
    assert.deepEqual(checksFailed(anonymous), [HISTORY]);
    const promotedByStudent = goodSnapshot();
    promotedByStudent.history!.find((e) => e.kind === 'promoted')!.actor = 'student';
    assert.deepEqual(checksFailed(promotedByStudent), [HISTORY]);
    const elsewhere = goodSnapshot();
    elsewhere.history![2]!.courseId = 'a';
    assert.deepEqual(checksFailed(elsewhere), [HISTORY]);
  });

  test('a promotion of someone never waitlisted', () => {
    const snapshot = goodSnapshot();
    snapshot.history!.push(entry('r3', 'b', 'promoted'));
    assert.match(checkInvariants(snapshot)[0]!.detail, /promoted \(entry \d+\) after enrolled/);
  });
});

/** Course o (2 seats, promotion offer): ann enrolled; bob was offered the seat cy freed and
 *  accepted; cy cancelled; dan's offer expired and passed to eve, who holds it now. */
function offerSnapshot(): InvariantSnapshot {
  nextEvent = 1;
  return {
    courses: [{ id: 'o', capacity: 3, waitlistCapacity: 5, enrolled: 2, waitlisted: 1, offered: 1 }],
    registrations: [
      registration('r1', 'o', 'ann', 'enrolled', 1),
      registration('r2', 'o', 'cy', 'cancelled', 2),
      registration('r3', 'o', 'bob', 'enrolled', 3),
      registration('r4', 'o', 'dan', 'cancelled', 4),
      { ...registration('r5', 'o', 'eve', 'waitlisted', 5, 1), offerOpen: true },
    ],
    history: [
      entry('r1', 'o', 'enrolled'), entry('r2', 'o', 'enrolled'), entry('r3', 'o', 'waitlisted'), entry('r4', 'o', 'waitlisted'), entry('r5', 'o', 'waitlisted'),
      entry('r2', 'o', 'cancelled'), entry('r3', 'o', 'offered', 'system'), entry('r3', 'o', 'accepted'),
      entry('r4', 'o', 'offered', 'system'), entry('r4', 'o', 'expired', 'system'), entry('r5', 'o', 'offered', 'system'),
    ],
  };
}

describe('invariant 9: an offer holds its seat until its deadline and ends once', () => {
  test('offers accepted, expired and open: no violation', () => {
    assert.deepEqual(checkInvariants(offerSnapshot()), []);
  });

  test('an offer both expired and accepted', () => {
    const snapshot = offerSnapshot();
    const expired = snapshot.history!.findIndex((e) => e.kind === 'expired');
    snapshot.history!.splice(expired + 1, 0, entry('r4', 'o', 'accepted'));
    snapshot.history!.forEach((e, i) => { e.id = i + 1; });
    assert.deepEqual(checksFailed(snapshot), [OFFER_ONCE]);
    assert.match(checkInvariants(snapshot)[0]!.detail, /r4 \(cancelled\): accepted \(entry \d+\) without an open offer/);
  });

  test('a seat held beyond capacity, and a held counter that is not the open offers', () => {
    const over = offerSnapshot();
    over.courses[0]!.capacity = 2;
    assert.ok(checksFailed(over).includes(HELD), JSON.stringify(checkInvariants(over)));
    const counter = offerSnapshot();
    counter.courses[0]!.offered = 0;
    assert.deepEqual(checksFailed(counter), [HELD]);
  });

  test('a row holding an offer its history never made, and a free seat while someone waits without one', () => {
    const unrecorded = offerSnapshot();
    unrecorded.history = unrecorded.history!.filter((e) => !(e.registrationId === 'r5' && e.kind === 'offered'));
    assert.deepEqual(checksFailed(unrecorded), [OFFER_ONCE]);
    const free = offerSnapshot();
    free.registrations[4]!.offerOpen = false;
    free.courses[0]!.offered = 0;
    free.history!.pop();
    assert.deepEqual(checksFailed(free), ['no free seat while someone waits']);
  });
});
