// The invariants of SPEC.md, shared by the tests and the bench: a pure check over a plain snapshot
// (rows read back, answers received, emails accepted), and the reads that take that snapshot.
import assert from 'node:assert/strict';
import type { Sql, TransactionSql } from '../../src/db/database.ts';

export type CourseState = {
  id: string;
  capacity: number;
  waitlistCapacity: number;
  /** The counters stored on the course row. */
  enrolled: number;
  waitlisted: number;
  /** The course's term; absent or null: none. */
  term?: string | null;
  /** Seats held by open waitlist offers (the counter on the row); absent: none. */
  offered?: number;
};

/** A term with its limit and the count stored for each of its students (term_students). */
export type TermState = {
  id: string;
  maxCoursesPerStudent: number | null;
  counts: { emailKey: string; active: number }[];
};

/** A registration event that is a change (every kind but reminder), as stored. */
export type HistoryEvent = {
  id: number;
  registrationId: string;
  courseId: string;
  kind: string;
  actor: string | null;
  reason: string | null;
};

export type StoredRegistration = {
  id: string;
  courseId: string;
  emailKey: string;
  status: 'enrolled' | 'waitlisted' | 'cancelled';
  seq: number;
  /** As the database computes it (registrar_registration_row); null unless waitlisted. */
  waitlistPosition: number | null;
  /** It holds an open waitlist offer (a seat held for it); absent: no. */
  offerOpen?: boolean;
};

/** One answer to POST /register; status 0 means none came (network error, timeout). A 200 names
 *  no registration (it shows nothing stored): it is checked by its course and email. */
export type ObservedAnswer = { course: string; emailKey: string; status: number; registrationId?: string; problemType?: string };

/** A place of a course's waiting room, as stored. */
export type StoredPlace = {
  id: string;
  emailKey: string;
  status: string;
  rank: number | null;
  /** Set once, when the place is admitted. */
  admitted: boolean;
  registrationId: string | null;
};

/** A course with a queue: its places and what its admission ticks counted. */
export type QueueState = {
  courseId: string;
  /** The sum of every tick's admissions (queue_states.admitted_total). */
  admittedTotal: number;
  places: StoredPlace[];
};

export type InvariantSnapshot = {
  courses: CourseState[];
  registrations: StoredRegistration[];
  /** The courses with a queue (SPEC invariant 8). */
  queues?: QueueState[];
  /** Every POST /register the bench sent; the bench is the only writer of the database. */
  answers?: ObservedAnswer[];
  /** Courses the workload oversubscribed: they must end exactly full, seats and waitlist. */
  expectFull?: string[];
  /** The terms (SPEC invariant 9, the limit). A lowered limit (PATCH) leaves students above it,
   *  which this check reports: snapshot a term with a lowered limit only to see that. */
  terms?: TermState[];
  /** Every change's history entry (SPEC invariant 10). */
  history?: HistoryEvent[];
  /** Emails: one per event, registration or queue (countEmailedEvents), each Message-ID once. */
  emails?: { events: number; messageIds: string[] };
};

export type Violation = { check: string; subject: string; detail: string };

/** What checkInvariants verifies, in the order it reports. */
export const INVARIANT_CHECKS = [
  'enrolled <= capacity and waitlisted <= waitlistCapacity',
  'counters equal the rows stored',
  'one active registration per (course, email)',
  'waitlist positions 1..n in arrival order',
  'no free seat while someone waits',
  'oversubscribed courses end exactly full',
  'nobody turned away (course-full) while a place was free',
  'the 201 answers are exactly the rows stored',
  'every 200 answer is for a student holding an active registration',
  'every request answered',
  'no server error',
  'every event emailed, each Message-ID once',
  'no registration of a queued course without a consumed admission',
  'each place admitted at most once',
  'seats in queue order, except through expiry',
  'one place per (course, email)',
  'no student above a term\'s limit; term counts equal the rows stored',
  'every registration change has exactly one history entry',
  'held seats within capacity; the offered counter equals the open offers',
  'each offer ends once: accepted, declined, expired or cancelled',
] as const;

type Check = (typeof INVARIANT_CHECKS)[number];

/** Courses and registrations as stored, with each waitlist position as the database computes it. */
export async function readInvariantSnapshot(sql: Sql | TransactionSql): Promise<Pick<InvariantSnapshot, 'courses' | 'registrations' | 'queues' | 'terms' | 'history'>> {
  const courses = await sql<{ id: string; capacity: number; waitlist_capacity: number; enrolled: number; waitlisted: number; term_id: string | null; offered: number }[]>`
    SELECT id, capacity, waitlist_capacity, enrolled, waitlisted, term_id, offered FROM courses ORDER BY id`;
  const terms = await sql<{ id: string; max_courses_per_student: number | null; counts: { emailKey: string; active: number }[] }[]>`
    SELECT t.id, t.max_courses_per_student,
      coalesce((SELECT json_agg(json_build_object('emailKey', s.email_key, 'active', s.active) ORDER BY s.email_key)
                FROM term_students s WHERE s.term_id = t.id), '[]') AS counts
    FROM terms t ORDER BY t.id`;
  const history = await sql<{ id: string; registration_id: string; course_id: string; kind: string; actor: string | null; reason: string | null }[]>`
    SELECT id::text, registration_id, course_id, kind, actor, reason FROM registration_events WHERE kind <> 'reminder' ORDER BY registration_events.id`;
  const registrations = await sql<{ id: string; course_id: string; email_key: string; status: StoredRegistration['status']; seq: string; position: string | null; offer_open: boolean }[]>`
    SELECT r.id, r.course_id, r.email_key, r.status, r.seq::text AS seq, r.offer_until IS NOT NULL AS offer_open,
      registrar_registration_row(r) ->> 'waitlist_position' AS position
    FROM registrations r ORDER BY r.seq`;
  const states = await sql<{ course_id: string; admitted_total: string }[]>`
    SELECT s.course_id, s.admitted_total::text FROM queue_states s JOIN courses c ON c.id = s.course_id
    WHERE c.queue_order IS NOT NULL ORDER BY s.course_id`;
  const places = await sql<{ id: string; course_id: string; email_key: string; status: string; rank: string | null; admitted: boolean; registration_id: string | null }[]>`
    SELECT id, course_id, email_key, status::text, rank::text, admitted_at IS NOT NULL AS admitted, registration_id
    FROM queue_places ORDER BY course_id, join_seq`;
  return {
    queues: states.map((state) => ({
      courseId: state.course_id,
      admittedTotal: Number(state.admitted_total),
      places: places.filter((p) => p.course_id === state.course_id).map((p) => ({
        id: p.id, emailKey: p.email_key, status: p.status, rank: p.rank === null ? null : Number(p.rank), admitted: p.admitted, registrationId: p.registration_id,
      })),
    })),
    courses: courses.map((c) => ({ id: c.id, capacity: c.capacity, waitlistCapacity: c.waitlist_capacity, enrolled: c.enrolled, waitlisted: c.waitlisted, term: c.term_id, offered: c.offered })),
    terms: terms.map((t) => ({ id: t.id, maxCoursesPerStudent: t.max_courses_per_student, counts: t.counts })),
    history: history.map((e) => ({ id: Number(e.id), registrationId: e.registration_id, courseId: e.course_id, kind: e.kind, actor: e.actor, reason: e.reason })),
    registrations: registrations.map((r) => ({
      id: r.id,
      courseId: r.course_id,
      emailKey: r.email_key,
      status: r.status,
      seq: Number(r.seq),
      waitlistPosition: r.position === null ? null : Number(r.position),
      offerOpen: r.offer_open,
    })),
  };
}

/**
 * The events that each get one email (SPEC invariant 4): the registrations' and the waiting
 * room's (joined, link, admitted, sold-out), whose ids come from one sequence.
 */
export async function countEmailedEvents(sql: Sql | TransactionSql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT (SELECT count(*) FROM registration_events)::int + (SELECT count(*) FROM queue_events)::int AS n`;
  return row!.n;
}

/** Reads one consistent snapshot of every course and fails with each violated invariant. */
export async function assertInvariants(sql: Sql): Promise<void> {
  const snapshot = await sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', (tx) => readInvariantSnapshot(tx));
  const violations = checkInvariants(snapshot);
  assert.deepEqual(violations, [], violations.map((v) => `${v.check}: ${v.subject}: ${v.detail}`).join('\n'));
}

/** The waitlist of a course as the API reports it, in order: positions must be 1..n. */
export async function waitlistPositions(sql: Sql, courseId: string): Promise<number[]> {
  const rows = await sql<{ position: string }[]>`
    SELECT (registrar_registration_row(r) ->> 'waitlist_position') AS position
    FROM registrations r WHERE course_id = ${courseId} AND status = 'waitlisted' ORDER BY seq`;
  return rows.map((row) => Number(row.position));
}

export function checkInvariants(snapshot: InvariantSnapshot): Violation[] {
  const violations: Violation[] = [];
  const fail = (check: Check, subject: string, detail: string) => violations.push({ check, subject, detail });
  const byCourse = new Map<string, StoredRegistration[]>();
  for (const r of snapshot.registrations) byCourse.set(r.courseId, [...(byCourse.get(r.courseId) ?? []), r]);
  const courseIds = new Set(snapshot.courses.map((c) => c.id));
  for (const courseId of byCourse.keys()) {
    if (!courseIds.has(courseId)) fail('counters equal the rows stored', courseId, 'registrations for a course that does not exist');
  }

  for (const course of snapshot.courses) {
    const rows = byCourse.get(course.id) ?? [];
    const enrolledRows = rows.filter((r) => r.status === 'enrolled').length;
    const waitlisted = rows.filter((r) => r.status === 'waitlisted').sort((a, b) => a.seq - b.seq);
    if (course.enrolled > course.capacity || enrolledRows > course.capacity) {
      fail('enrolled <= capacity and waitlisted <= waitlistCapacity', course.id, `enrolled ${course.enrolled} (rows ${enrolledRows}) > capacity ${course.capacity}`);
    }
    if (course.waitlisted > course.waitlistCapacity || waitlisted.length > course.waitlistCapacity) {
      fail('enrolled <= capacity and waitlisted <= waitlistCapacity', course.id, `waitlisted ${course.waitlisted} (rows ${waitlisted.length}) > waitlistCapacity ${course.waitlistCapacity}`);
    }
    if (course.enrolled !== enrolledRows) fail('counters equal the rows stored', course.id, `enrolled counter ${course.enrolled} != ${enrolledRows} enrolled rows`);
    if (course.waitlisted !== waitlisted.length) fail('counters equal the rows stored', course.id, `waitlisted counter ${course.waitlisted} != ${waitlisted.length} waitlisted rows`);

    const active = new Map<string, number>();
    for (const r of rows) if (r.status !== 'cancelled') active.set(r.emailKey, (active.get(r.emailKey) ?? 0) + 1);
    for (const [emailKey, count] of active) {
      if (count > 1) fail('one active registration per (course, email)', course.id, `${count} active registrations for ${emailKey}`);
    }

    const positions = waitlisted.map((r) => r.waitlistPosition);
    if (positions.some((position, i) => position !== i + 1)) {
      const shown = positions.length > 12 ? `${positions.slice(0, 12).join(', ')}, ...` : positions.join(', ');
      fail('waitlist positions 1..n in arrival order', course.id, `positions in arrival order are [${shown}], expected 1..${positions.length}`);
    }
    // A seat held by an open offer is not free; whoever holds an offer waits no more.
    const held = waitlisted.filter((r) => r.offerOpen === true).length;
    const waiting = waitlisted.length - held;
    if (enrolledRows + held < course.capacity && waiting > 0) {
      fail('no free seat while someone waits', course.id, `${course.capacity - enrolledRows - held} free seats while ${waiting} wait`);
    }
    if (enrolledRows + held > course.capacity) {
      fail('held seats within capacity; the offered counter equals the open offers', course.id, `${enrolledRows} enrolled + ${held} held > capacity ${course.capacity}`);
    }
    if ((course.offered ?? 0) !== held) {
      fail('held seats within capacity; the offered counter equals the open offers', course.id, `offered counter ${course.offered ?? 0} != ${held} open offers`);
    }
  }

  const coursesById = new Map(snapshot.courses.map((c) => [c.id, c]));
  for (const id of snapshot.expectFull ?? []) {
    const course = coursesById.get(id);
    if (!course) fail('oversubscribed courses end exactly full', id, 'no such course');
    else if (course.enrolled !== course.capacity || course.waitlisted !== course.waitlistCapacity) {
      fail('oversubscribed courses end exactly full', id, `enrolled ${course.enrolled}/${course.capacity}, waitlisted ${course.waitlisted}/${course.waitlistCapacity}`);
    }
  }

  if (snapshot.terms) checkTerms(snapshot, snapshot.terms, fail);
  if (snapshot.history) checkHistory(snapshot.registrations, snapshot.history, fail);
  if (snapshot.answers) checkAnswers(snapshot, snapshot.answers, coursesById, fail);
  for (const queue of snapshot.queues ?? []) checkQueue(queue, byCourse.get(queue.courseId) ?? [], fail);

  if (snapshot.emails) {
    const counts = new Map<string, number>();
    for (const id of snapshot.emails.messageIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    if (twice.length > 0) fail('every event emailed, each Message-ID once', 'emails', `${twice.length} Message-IDs received more than once, e.g. ${twice[0]![0]}`);
    if (counts.size !== snapshot.emails.events) {
      fail('every event emailed, each Message-ID once', 'emails', `${counts.size} distinct emails received for ${snapshot.emails.events} events (registration and queue)`);
    }
  }
  return violations;
}

function checkAnswers(
  snapshot: InvariantSnapshot,
  answers: ObservedAnswer[],
  coursesById: Map<string, CourseState>,
  fail: (check: Check, subject: string, detail: string) => void,
): void {
  const rowsById = new Map(snapshot.registrations.map((r) => [r.id, r]));
  // An answer lost on the way (no answer, or a 5xx) may hide a commit: its row is not "extra".
  const unanswered = new Set(answers.filter((a) => a.status === 0 || a.status >= 500).map((a) => `${a.course}\n${a.emailKey}`));

  const created = new Set<string>();
  for (const answer of answers.filter((a) => a.status === 201)) {
    const id = answer.registrationId ?? '(no id)';
    if (created.has(id)) fail('the 201 answers are exactly the rows stored', answer.course, `registration ${id} answered 201 twice`);
    created.add(id);
    const row = rowsById.get(id);
    if (!row) fail('the 201 answers are exactly the rows stored', answer.course, `201 for ${answer.emailKey} names ${id}, which is not stored`);
    else if (row.courseId !== answer.course || row.emailKey !== answer.emailKey) {
      fail('the 201 answers are exactly the rows stored', answer.course, `201 for ${answer.emailKey} names ${id}, stored as ${row.courseId}/${row.emailKey}`);
    }
  }
  for (const row of snapshot.registrations) {
    if (!created.has(row.id) && !unanswered.has(`${row.courseId}\n${row.emailKey}`)) {
      fail('the 201 answers are exactly the rows stored', row.courseId, `row ${row.id} (${row.emailKey}) was stored, but no 201 answer named it`);
    }
  }

  const activeStudents = new Set(snapshot.registrations.filter((r) => r.status !== 'cancelled').map((r) => `${r.courseId}\n${r.emailKey}`));
  for (const answer of answers.filter((a) => a.status === 200)) {
    if (!activeStudents.has(`${answer.course}\n${answer.emailKey}`)) {
      fail('every 200 answer is for a student holding an active registration', answer.course, `200 for ${answer.emailKey}, who holds no active registration in ${answer.course}`);
    }
  }

  const turnedAway = new Set(answers.filter((a) => a.status === 409 && a.problemType === '/problems/course-full').map((a) => a.course));
  for (const id of turnedAway) {
    const course = coursesById.get(id);
    if (course && (course.enrolled < course.capacity || course.waitlisted < course.waitlistCapacity)) {
      fail('nobody turned away (course-full) while a place was free', id, `course-full answered, yet enrolled ${course.enrolled}/${course.capacity}, waitlisted ${course.waitlisted}/${course.waitlistCapacity}`);
    }
  }

  // A request without an answer (a dropped connection, a timeout) or with a server error is a
  // lost answer: the student cannot know whether they are registered. Only a 503 overloaded is
  // a legitimate refusal (SPEC invariant 7: nothing was done).
  const noAnswer = answers.filter((a) => a.status === 0);
  if (noAnswer.length > 0) fail('every request answered', noAnswer[0]!.course, `${noAnswer.length} requests got no answer (network error or timeout)`);
  const serverErrors = answers.filter((a) => a.status >= 500 && !(a.status === 503 && a.problemType === '/problems/overloaded'));
  if (serverErrors.length > 0) fail('no server error', serverErrors[0]!.course, `${serverErrors.length} answers were server errors (${[...new Set(serverErrors.map((a) => a.status))].join(', ')})`);
}

/** SPEC invariant 8 for one course with a queue. */
function checkQueue(queue: QueueState, registrations: StoredRegistration[], fail: (check: Check, subject: string, detail: string) => void): void {
  const consumed = new Set(queue.places.filter((p) => p.status === 'registered').map((p) => p.registrationId));
  const unadmitted = registrations.filter((r) => !consumed.has(r.id));
  if (unadmitted.length > 0) {
    fail('no registration of a queued course without a consumed admission', queue.courseId, `${unadmitted.length} registrations have no registered place, e.g. ${unadmitted[0]!.id} (${unadmitted[0]!.emailKey})`);
  }
  const byId = new Map(registrations.map((r) => [r.id, r]));
  const mismatched = queue.places.filter((p) => p.registrationId !== null && byId.get(p.registrationId)?.emailKey !== p.emailKey);
  if (mismatched.length > 0) {
    fail('no registration of a queued course without a consumed admission', queue.courseId, `${mismatched.length} places consumed by another student's registration, e.g. place ${mismatched[0]!.id}`);
  }
  const admitted = queue.places.filter((p) => p.admitted).length;
  if (queue.admittedTotal !== admitted) {
    fail('each place admitted at most once', queue.courseId, `the ticks admitted ${queue.admittedTotal} times, ${admitted} places were admitted`);
  }
  // Admitted in rank order: nobody ranked ahead of a place that was admitted still waits or was
  // sold out (a place that left, or expired, is passed over).
  const lastAdmitted = Math.max(0, ...queue.places.filter((p) => p.admitted).map((p) => p.rank ?? 0));
  const skipped = queue.places.filter((p) => p.rank !== null && p.rank < lastAdmitted && !p.admitted && p.status !== 'left');
  if (skipped.length > 0) {
    fail('seats in queue order, except through expiry', queue.courseId, `${skipped.length} places ranked ahead of rank ${lastAdmitted} (admitted) were never admitted, e.g. rank ${skipped[0]!.rank} (${skipped[0]!.status})`);
  }
  // verifyEmail: a place whose email is not verified is not in the order at all.
  const unverified = queue.places.filter((p) => p.status === 'unverified' && (p.rank !== null || p.admitted));
  if (unverified.length > 0) {
    fail('seats in queue order, except through expiry', queue.courseId, `${unverified.length} unverified places are ranked or were admitted, e.g. place ${unverified[0]!.id}`);
  }
  const ranks = queue.places.map((p) => p.rank).filter((rank) => rank !== null).sort((a, b) => a - b);
  if (ranks.some((rank, i) => rank !== i + 1)) {
    fail('seats in queue order, except through expiry', queue.courseId, `ranks are not 1..${ranks.length} without gaps`);
  }
  const keys = new Set(queue.places.map((p) => p.emailKey));
  if (keys.size !== queue.places.length) {
    fail('one place per (course, email)', queue.courseId, `${queue.places.length - keys.size} places repeat an email of the course`);
  }
}

/** SPEC invariant 9, the limit: counted from the rows, no student holds more active registrations
 *  in a term than its limit, and the stored counts (term_students) are those rows. */
function checkTerms(snapshot: InvariantSnapshot, terms: TermState[], fail: (check: Check, subject: string, detail: string) => void): void {
  const termOf = new Map(snapshot.courses.map((c) => [c.id, c.term ?? null]));
  for (const term of terms) {
    const held = new Map<string, number>();
    for (const r of snapshot.registrations) {
      if (r.status !== 'cancelled' && termOf.get(r.courseId) === term.id) held.set(r.emailKey, (held.get(r.emailKey) ?? 0) + 1);
    }
    const over = [...held].filter(([, n]) => term.maxCoursesPerStudent !== null && n > term.maxCoursesPerStudent);
    if (over.length > 0) {
      fail('no student above a term\'s limit; term counts equal the rows stored', term.id, `${over.length} students above the limit ${term.maxCoursesPerStudent}, e.g. ${over[0]![0]} with ${over[0]![1]}`);
    }
    const stored = new Map(term.counts.map((c) => [c.emailKey, c.active]));
    const wrong = [...new Set([...held.keys(), ...stored.keys()])].filter((key) => (held.get(key) ?? 0) !== (stored.get(key) ?? 0));
    if (wrong.length > 0) {
      const key = wrong[0]!;
      fail('no student above a term\'s limit; term counts equal the rows stored', term.id, `${wrong.length} stored counts differ from the rows, e.g. ${key}: stored ${stored.get(key) ?? 0}, rows ${held.get(key) ?? 0}`);
    }
  }
}

const OFFER_ENDS = new Set(['accepted', 'declined', 'expired']);

/** The status a registration's history leads to (and whether an offer is open at its end), or
 *  why it is not a history: created once (enrolled or waitlisted), promoted only from the
 *  waitlist without an offer, offered only while waiting without one, an offer ended once
 *  (accepted, declined, expired, or the registration cancelled), cancelled at most once and last. */
function replayHistory(events: HistoryEvent[]): { status: StoredRegistration['status']; offerOpen: boolean } | string {
  let status: StoredRegistration['status'] | null = null;
  let offerOpen = false;
  for (const event of events) {
    if (event.actor === null || event.reason === null) return `entry ${event.id} (${event.kind}) says no actor or no reason`;
    if ((event.kind === 'promoted' || event.kind === 'offered' || event.kind === 'expired') && event.actor !== 'system') return `${event.kind} ${event.id} by ${event.actor}, not the system`;
    if (OFFER_ENDS.has(event.kind) && !offerOpen) return `offer-ends: ${event.kind} (entry ${event.id}) without an open offer`;
    const next: StoredRegistration['status'] | null = event.kind === 'enrolled' || event.kind === 'waitlisted' ? (status === null ? event.kind : null)
      : event.kind === 'promoted' ? (status === 'waitlisted' && !offerOpen ? 'enrolled' : null)
        : event.kind === 'offered' ? (status === 'waitlisted' && !offerOpen ? 'waitlisted' : null)
          : event.kind === 'accepted' ? 'enrolled'
            : event.kind === 'declined' || event.kind === 'expired' ? 'cancelled'
              : event.kind === 'cancelled' ? (status === 'enrolled' || status === 'waitlisted' ? 'cancelled' : null)
                : null;
    if (next === null) return `${event.kind} (entry ${event.id}) after ${status ?? 'nothing'}${offerOpen ? ' with an open offer' : ''}`;
    status = next;
    offerOpen = event.kind === 'offered';
  }
  return status === null ? 'no entry at all' : { status, offerOpen };
}

/** SPEC invariant 10: each registration's entries, in order, are exactly its changes: they lead
 *  to the status stored, each once, each with who and why. */
function checkHistory(registrations: StoredRegistration[], history: HistoryEvent[], fail: (check: Check, subject: string, detail: string) => void): void {
  const byRegistration = new Map<string, HistoryEvent[]>();
  for (const event of history) byRegistration.set(event.registrationId, [...(byRegistration.get(event.registrationId) ?? []), event]);
  const broken: string[] = [];
  const offersBroken: string[] = [];
  for (const r of registrations) {
    const events = (byRegistration.get(r.id) ?? []).sort((a, b) => a.id - b.id);
    const replayed = replayHistory(events);
    if (typeof replayed === 'string') (replayed.startsWith('offer-ends: ') ? offersBroken : broken).push(`${r.id} (${r.status}): ${replayed.replace(/^offer-ends: /, '')}`);
    else if (replayed.status !== r.status) broken.push(`${r.id} (${r.status}): its entries lead to ${replayed.status}`);
    else if (replayed.offerOpen !== (r.offerOpen ?? false)) offersBroken.push(`${r.id}: its entries leave an offer ${replayed.offerOpen ? 'open' : 'closed'}, the row has it ${r.offerOpen ? 'open' : 'closed'}`);
    else if (events.some((e) => e.courseId !== r.courseId)) broken.push(`${r.id}: an entry names another course`);
  }
  if (broken.length > 0) {
    fail('every registration change has exactly one history entry', 'registrations', `${broken.length} registrations whose history is not their changes, e.g. ${broken[0]}`);
  }
  if (offersBroken.length > 0) {
    fail('each offer ends once: accepted, declined, expired or cancelled', 'registrations', `${offersBroken.length} registrations whose offers did not end once, e.g. ${offersBroken[0]}`);
  }
}
