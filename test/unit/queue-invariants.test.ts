// SPEC invariant 8's checks in test/support/invariants.ts, fed a good waiting room and broken ones:
// each break is reported by its own check.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkInvariants, type InvariantSnapshot, type StoredPlace } from '../support/invariants.ts';

const place = (id: string, rank: number | null, status: string, registrationId: string | null = null): StoredPlace =>
  ({ id, emailKey: `${id}@example.org`, status, rank, admitted: ['admitted', 'registered', 'expired'].includes(status), registrationId });

/** Two seats: rank 1 expired, ranks 2 and 3 registered, rank 4 sold out, one place left before the ordering, one never verified. */
function goodSnapshot(): InvariantSnapshot {
  return {
    courses: [{ id: 'q', capacity: 2, waitlistCapacity: 0, enrolled: 2, waitlisted: 0 }],
    registrations: [
      { id: 'r2', courseId: 'q', emailKey: 'p2@example.org', status: 'enrolled', seq: 1, waitlistPosition: null },
      { id: 'r3', courseId: 'q', emailKey: 'p3@example.org', status: 'enrolled', seq: 2, waitlistPosition: null },
    ],
    queues: [{
      courseId: 'q',
      admittedTotal: 3,
      places: [place('p1', 1, 'expired'), place('p2', 2, 'registered', 'r2'), place('p3', 3, 'registered', 'r3'), place('p4', 4, 'sold-out'), place('p5', null, 'left'), place('p6', null, 'unverified')],
    }],
  };
}

const checksFailed = (snapshot: InvariantSnapshot) => [...new Set(checkInvariants(snapshot).map((v) => v.check))];

describe('invariant 8', () => {
  test('a good waiting room: no violation (an expiry may let the places behind go first)', () => {
    assert.deepEqual(checkInvariants(goodSnapshot()), []);
  });

  test('a registration without a consumed admission', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.places[2]!.status = 'admitted';
    snapshot.queues![0]!.places[2]!.registrationId = null;
    assert.deepEqual(checksFailed(snapshot), ['no registration of a queued course without a consumed admission']);
  });

  test('a place consumed by another student\'s registration', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.places[1]!.registrationId = 'r3';
    snapshot.queues![0]!.places[2]!.registrationId = 'r2';
    assert.deepEqual(checksFailed(snapshot), ['no registration of a queued course without a consumed admission']);
  });

  test('more admissions counted by the ticks than places admitted: one was admitted twice', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.admittedTotal = 4;
    assert.deepEqual(checksFailed(snapshot), ['each place admitted at most once']);
  });

  test('a place passed over while someone behind it was admitted', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.places[0]!.status = 'sold-out';
    snapshot.queues![0]!.places[0]!.admitted = false;
    snapshot.queues![0]!.admittedTotal = 2;
    assert.deepEqual(checksFailed(snapshot), ['seats in queue order, except through expiry']);
  });

  test('a gap in the ranks', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.places[3]!.rank = 5;
    assert.deepEqual(checksFailed(snapshot), ['seats in queue order, except through expiry']);
  });

  test('an unverified place in the order', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.places[5]!.rank = 5;
    assert.deepEqual(checksFailed(snapshot), ['seats in queue order, except through expiry']);
  });

  test('two places for one email', () => {
    const snapshot = goodSnapshot();
    snapshot.queues![0]!.places[4]!.emailKey = 'p4@example.org';
    assert.deepEqual(checksFailed(snapshot), ['one place per (course, email)']);
  });
});
