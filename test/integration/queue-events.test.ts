// GET /queue/{id}/events over real HTTP against a real PostgreSQL: the current state at once,
// admission and the final statuses as changes, coalescing, position changes held back until
// they are a tenth of the position or a refresh is due, hundreds of streams at once, the
// refusals before any stream, Last-Event-ID, keep-alive comments, and a graceful stop with
// streams open.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { admitFromQueue } from '../../src/db/queries/queue.queries.ts';
import { readQueuePlaces } from '../../src/domain/queue-watch.service.ts';
import { QueueStreamHub } from '../../src/http/queue-stream-hub.ts';
import { processMetrics } from '../../src/observability/metrics.ts';
import { openEventStream, type EventStream } from '../support/event-stream.ts';
import { newCourse } from '../support/factories.ts';
import { assertProblem, startTestServer } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack({ poolSize: 20 });

const past = (ms: number) => new Date(Date.now() - ms).toISOString();
const future = (ms: number) => new Date(Date.now() + ms).toISOString();

type Joined = { id: string; email: string; queueToken: string };

/** A queued course with `count` places, opened (ordered at the first read or tick). */
async function openedCourseWith(count: number, capacity: number, prefix: string): Promise<{ course: string; joined: Joined[] }> {
  const course = await newCourse(stack.server.client, { capacity, waitlistCapacity: 0, opensAt: future(3_600_000), queue: { order: 'random' } });
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => stack.server.client.request('POST', `/courses/${course}/queue`, {
    body: { name: `Student ${prefix}${i}`, email: `${prefix}${i}@example.org` },
  })));
  assert.ok(answers.every((a) => a.status === 201));
  const opened = await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: past(1_000) });
  assert.equal(opened.status, 200);
  return { course, joined: answers.map((a, i) => ({ id: a.body.id, email: `${prefix}${i}@example.org`, queueToken: a.body.queueToken })) };
}

/** The places in queue order (position 1 first), read through GET /queue/{id}. */
async function inQueueOrder(joined: Joined[]): Promise<Joined[]> {
  const positions = new Map(await Promise.all(joined.map(async (j) => [j.id, (await getPlace(j)).position as number] as const)));
  return [...joined].sort((a, b) => positions.get(a.id)! - positions.get(b.id)!);
}

async function getPlace(joined: Joined, token = joined.queueToken): Promise<any> {
  const answer = await stack.server.client.request('GET', `/queue/${joined.id}`, { token });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

function watch(joined: Joined, options: { token?: string; headers?: Record<string, string>; url?: string } = {}): Promise<EventStream> {
  return openEventStream(`${options.url ?? stack.server.url}/queue/${joined.id}/events`, { authorization: `Bearer ${options.token ?? joined.queueToken}`, ...options.headers });
}

function leave(joined: Joined): Promise<unknown> {
  return stack.server.client.request('DELETE', `/queue/${joined.id}`, { token: joined.queueToken });
}

describe('a place\'s stream', () => {
  test('sends the current state at once, then admission as a change, with the admission for the token\'s holder only, and ends once registered', async () => {
    const { course, joined } = await openedCourseWith(3, 10, 'first');
    const [a] = joined;
    const stream = await watch(a!);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/event-stream');
    const first = await stream.waitFor(() => true);
    assert.deepEqual({ id: first.id, event: first.event }, { id: '1', event: 'place' });
    assert.deepEqual(first.data, await getPlace(a!), 'the first message is what GET /queue/{id} answers');
    assert.equal(first.data.status, 'waiting');
    const asAdmin = await watch(a!, { token: stack.server.client.adminToken });
    await asAdmin.waitFor(() => true);

    await admitFromQueue(stack.db.sql, course);
    const admitted = await stream.waitFor((m) => m.data.status === 'admitted');
    assert.deepEqual(admitted.data, await getPlace(a!));
    assert.equal(typeof admitted.data.admission, 'string');
    assert.equal((await asAdmin.waitFor((m) => m.data.status === 'admitted')).data.admission, null, 'the admin has no queue token, so its stream shows no admission');

    const registered = await stack.server.client.request('POST', '/register', { body: { name: 'A Student', email: a!.email, course, admission: admitted.data.admission } });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    await stream.ended;
    await asAdmin.ended;
    assert.equal(stream.messages.at(-1)!.data.status, 'registered', 'the stream\'s last message is the final state');
    assert.deepEqual(stream.messages.map((m) => m.id), stream.messages.map((_, i) => String(i + 1)));
  });

  test('coalesces: 20 changes in quick succession reach the stream as far fewer messages, the last one the final state', async () => {
    // One seat: each tick admits the head alone, and its leaving lets the next tick admit the next.
    const { course, joined } = await openedCourseWith(22, 1, 'coalesce');
    const ordered = await inQueueOrder(joined);
    const watched = ordered[20]!;
    const stream = await watch(watched);
    assert.equal((await stream.waitFor(() => true)).data.position, 21);
    const startedAt = Date.now();
    for (const head of ordered.slice(0, 20)) {
      await admitFromQueue(stack.db.sql, course);
      await leave(head);
    }
    await admitFromQueue(stack.db.sql, course);
    await leave(watched);
    const changes = 22; // 20 positions, admitted, left
    const elapsedSeconds = Math.ceil((Date.now() - startedAt) / 1_000);
    await stream.ended;
    const received = stream.messages.length - 1;
    assert.equal(stream.messages.at(-1)!.data.status, 'left');
    assert.ok(received < changes / 2, `${received} messages for ${changes} changes`);
    assert.ok(received <= elapsedSeconds + 2, `${received} messages in ${elapsedSeconds} s and the final one: at most one a second`);
  });

  test('300 streams open at once all receive their updates', async () => {
    const { course, joined } = await openedCourseWith(320, 400, 'many');
    const streams = await Promise.all(joined.map((j) => watch(j)));
    await Promise.all(streams.map((s) => s.waitFor(() => true)));
    const outcome = await admitFromQueue(stack.db.sql, course);
    assert.ok(outcome.outcome === 'admitting' && outcome.admitted > 0 && outcome.admitted < 320, JSON.stringify(outcome));
    try {
      // Every stream shows, in its latest message, what GET /queue/{id} shows now: admitted, or a
      // position fewer by the number admitted.
      const expected = await Promise.all(joined.map((j) => getPlace(j)));
      await eventually(async () => streams.filter((s, i) => JSON.stringify(s.messages.at(-1)!.data) !== JSON.stringify(expected[i])).length, (behind) => behind === 0, 20_000);
      assert.equal(expected.filter((p) => p.status === 'admitted').length, outcome.admitted);
    } finally {
      for (const s of streams) s.close();
    }
  });

  test('a sold-out course ends every waiting place\'s stream with sold-out', async () => {
    const { course, joined } = await openedCourseWith(3, 1, 'soldout');
    const [head, ...rest] = await inQueueOrder(joined);
    const streams = await Promise.all(rest.map((j) => watch(j)));
    await admitFromQueue(stack.db.sql, course);
    const admission = (await getPlace(head!)).admission;
    assert.equal((await stack.server.client.request('POST', '/register', { body: { name: 'Head', email: head!.email, course, admission } })).status, 201);
    await admitFromQueue(stack.db.sql, course);
    for (const stream of streams) {
      await stream.ended;
      assert.equal(stream.messages.at(-1)!.data.status, 'sold-out');
    }
  });

  test('a wrong token is 401 and an unknown place 404, each a problem with nothing streamed', async () => {
    const { joined } = await openedCourseWith(2, 5, 'refused');
    const [a, b] = joined;
    for (const [stream, status, slug] of [
      [await watch(a!, { token: b!.queueToken }), 401, 'unauthorized'],
      [await openEventStream(`${stack.server.url}/queue/${a!.id}/events`), 401, 'unauthorized'],
      [await watch({ ...a!, id: '00000000-0000-4000-8000-000000000000' }), 404, 'not-found'],
    ] as const) {
      await stream.ended;
      assertProblem({ status: stream.status, headers: new Headers(stream.headers as Record<string, string>), body: JSON.parse(stream.text) }, status, slug, `${status}`);
      assert.deepEqual(stream.messages, []);
      assert.doesNotMatch(stream.text, /event: place/);
    }
  });

  test('a reconnecting page (Last-Event-ID) gets the current state at once, numbered on from it', async () => {
    const { joined } = await openedCourseWith(1, 5, 'resume');
    const stream = await watch(joined[0]!, { headers: { 'last-event-id': '41' } });
    const first = await stream.waitFor(() => true);
    assert.equal(first.id, '42');
    assert.deepEqual(first.data, await getPlace(joined[0]!));
    stream.close();
  });
});

/** A hub of its own behind a bare HTTP server: GET /{place id} opens that place's stream. */
async function serveHub(hub: QueueStreamHub): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((request, response) => {
    const id = request.url!.slice(1);
    readQueuePlaces(stack.db.sql, [id]).then((places) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      hub.open(response, places.get(id)!, { admission: null, firstId: 1 });
    }, (error: unknown) => response.destroy(error as Error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      hub.stop();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('a stream with nothing new gets a keep-alive comment once it was silent for keepAliveMs', async () => {
  const { joined } = await openedCourseWith(1, 5, 'alive');
  const hub = new QueueStreamHub({ sql: stack.db.sql, tickMs: 100, keepAliveMs: 300 });
  const served = await serveHub(hub);
  try {
    const stream = await openEventStream(`${served.url}/${joined[0]!.id}`);
    await eventually(async () => stream.comments.length, (n) => n >= 2, 10_000);
    assert.deepEqual(new Set(stream.comments), new Set(['keep-alive']));
    assert.equal(stream.messages.length, 1, 'the state did not change: no message after the first');
    hub.stop();
    await stream.ended;
  } finally {
    await served.close();
  }
});

test('a position change alone is sent once it is a tenth of the position, or positionRefreshMs after the last message; a status change at once', async () => {
  // One seat: each tick admits the head alone, and its leaving lets the next tick admit the next.
  const { course, joined } = await openedCourseWith(30, 1, 'step');
  const ordered = await inQueueOrder(joined);
  // A first admission gives the places an estimate (a change sent at once): from here on the
  // figures alone change.
  await admitFromQueue(stack.db.sql, course);
  await leave(ordered[0]!);
  const [second, third, fourth] = ordered.slice(1);
  const last = ordered[29]!;
  const patient = await serveHub(new QueueStreamHub({ sql: stack.db.sql, tickMs: 100, positionRefreshMs: 600_000 }));
  const refreshing = await serveHub(new QueueStreamHub({ sql: stack.db.sql, tickMs: 100, positionRefreshMs: 300 }));
  try {
    const back = await openEventStream(`${patient.url}/${last.id}`);
    const front = await openEventStream(`${patient.url}/${third!.id}`);
    const backRefreshed = await openEventStream(`${refreshing.url}/${last.id}`);
    for (const stream of [back, front, backRefreshed]) await stream.waitFor(() => true);
    assert.deepEqual([back.messages[0]!.data.position, front.messages[0]!.data.position], [29, 2]);
    assert.equal(typeof back.messages[0]!.data.estimatedWaitSeconds, 'number');

    await admitFromQueue(stack.db.sql, course);
    await leave(second!);
    // The front place moved by half its position: sent. The back one by 1 of 29: held back, in
    // the same tick's read (one statement reads both places), until a tenth or the refresh.
    assert.equal((await front.waitFor((m) => m.data.position === 1)).data.status, 'waiting');
    assert.equal((await backRefreshed.waitFor((m) => m.data.position === 28)).data.status, 'waiting', 'sent after positionRefreshMs');
    await admitFromQueue(stack.db.sql, course);
    await front.waitFor((m) => m.data.status === 'admitted');
    assert.deepEqual(back.messages.map((m) => m.data.position), [29], 'no message for 28 and 27');

    await leave(third!);
    await admitFromQueue(stack.db.sql, course);
    await front.ended;
    assert.equal(front.messages.at(-1)!.data.status, 'left', 'a final status: sent, and the stream ends');
    const moved = await back.waitFor((m) => m.data.position !== 29);
    assert.deepEqual({ position: moved.data.position, ahead: moved.data.ahead }, { position: 26, ahead: 25 }, 'three places of 29 are a tenth: sent');
    assert.equal((await getPlace(fourth!)).status, 'admitted');
    back.close();
    backRefreshed.close();
  } finally {
    await patient.close();
    await refreshing.close();
  }
});

describe('stopping', () => {
  test('the server stops gracefully with streams open: each ends, and the gauge counts them', async () => {
    const metrics = processMetrics();
    const server = await startTestServer(stack.db.sql, { metrics });
    const { joined } = await openedCourseWith(5, 5, 'stop');
    const streams = await Promise.all(joined.map((j) => watch(j, { url: server.url })));
    await Promise.all(streams.map((s) => s.waitFor(() => true)));
    const gauge = async () => (await metrics.queueStreams.get()).values.find((v) => v.labels.worker === metrics.worker)?.value;
    assert.equal(await gauge(), 5);
    await server.close();
    await Promise.all(streams.map((s) => s.ended));
    assert.equal(await gauge(), 0);
  });
});
