// Abuse at the edge, on a real socket behind a trusted proxy hop (TRUST_PROXY=true: this test is
// the proxy, the X-Forwarded-For entry it appends is the client), RATE_LIMIT_PER_MINUTE=5:
//   - IPv6 clients share one budget per /64;
//   - wrong admin tokens use up a budget of their own, after which the client gets 429 even with
//     the right token; the right token costs nothing, and works from another address;
//   - /metrics: open on loopback, refused elsewhere without METRICS_TOKEN, and with it only for
//     the right bearer token (wrong ones limited as wrong admin tokens are).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { assertProblem, type Client, startTestServer, TEST_ADMIN_TOKEN, type TestServer } from '../support/http.ts';
import { inOneWindow } from '../support/rate-limit-window.ts';
import { useStack } from '../support/stack.ts';

const LIMIT = 5;
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

const EDGE = { rateLimitPerMinute: LIMIT, trustProxy: 1 } as const;

let withToken: Client;
let withoutToken: Client;
let serverWithoutToken: TestServer | undefined;
const stack = useStack({ server: { ...EDGE, metricsToken: METRICS_TOKEN } }, async (stack) => {
  const server = serverWithoutToken = await startTestServer(stack.db.sql, EDGE);
  stack.onStop('close the server without a metrics token', () => server.close());
  [withToken, withoutToken] = [stack.server.client, serverWithoutToken.client];
});

const from = (address: string, headers: Record<string, string> = {}) => ({ 'x-forwarded-for': address, ...headers });

describe('abuse at the edge', { timeout: 120_000 }, () => {
  test('IPv6 clients are counted per /64: other addresses of the /64 are refused, another /64 is not', async () => {
    const course = await newCourse(withToken, { capacity: 100 });
    await inOneWindow(20_000, async () => {
      const addresses = ['2001:db8:a:b::1', '2001:db8:a:b::2', '2001:db8:a:b:1:2:3:4', '2001:db8:a:b:ffff::', '2001:0db8:000a:000b::5'];
      for (const [i, address] of addresses.entries()) {
        assert.equal((await withToken.register(student(course, i, 'v6'), from(address))).status, 201, address);
      }
      assertProblem(await withToken.register(student(course, 10, 'v6'), from('2001:db8:a:b:9999::9')), 429, 'rate-limited', 'a sixth address of the same /64');
      assert.equal((await withToken.register(student(course, 11, 'v6'), from('2001:db8:a:c::1'))).status, 201, 'another /64 has its own budget');
    });
    // IPv4-mapped IPv6 is the IPv4 address.
    await inOneWindow(20_000, async () => {
      for (let i = 0; i < LIMIT; i++) {
        const address = i % 2 === 0 ? '198.51.100.7' : '::ffff:198.51.100.7';
        assert.equal((await withToken.register(student(course, 20 + i, 'v4'), from(address))).status, 201, address);
      }
      assertProblem(await withToken.register(student(course, 30, 'v4'), from('::ffff:c633:6407')), 429, 'rate-limited', 'the mapped form of a spent IPv4 address');
    });
  });

  test('requests admitted while their counts are on the way to PostgreSQL still count', async () => {
    const course = await newCourse(withToken, { capacity: 100 });
    const client = '198.51.100.40';
    const bucket = `register:${client}`;
    const storedCount = async () => (await stack.db.sql<{ count: number }[]>`SELECT count FROM rate_limit_windows WHERE bucket = ${bucket}`)[0]?.count ?? 0;
    await inOneWindow(25_000, async () => {
      for (let i = 0; i < 3; i++) assert.equal((await withToken.register(student(course, i, 'flight'), from(client))).status, 201);
      while ((await storedCount()) < 3) await sleep(50);
      // The next flush waits on this lock with its counts in hand, for as long as the test wants.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const holder = stack.db.sql.begin(async (tx) => {
        await tx`LOCK TABLE rate_limit_windows IN SHARE MODE`;
        locked();
        await released;
      });
      await isLocked;
      try {
        for (let i = 3; i < LIMIT; i++) assert.equal((await withToken.register(student(course, i, 'flight'), from(client))).status, 201);
        await sleep(400); // a flush has taken these two and is blocked on the lock
        const over = await withToken.register(student(course, 9, 'flight'), from(client));
        assertProblem(over, 429, 'rate-limited', 'the sixth request, while the fourth and fifth are being sent');
      } finally {
        release();
        await holder;
      }
    });
  });

  test('an X-Forwarded-For entry that is no address shares one bucket, which the shared counters store', async () => {
    const course = await newCourse(withToken, { capacity: 10 });
    const junk = `junk-${'x'.repeat(4000)}`; // longer than a B-tree index entry may be
    assert.equal((await withToken.register(student(course, 1, 'junk'), from(junk))).status, 201);
    let stored: { bucket: string }[] = [];
    for (let i = 0; i < 50 && stored.length === 0; i++) {
      await sleep(100); // the counts are flushed every 100 ms
      stored = await stack.db.sql<{ bucket: string }[]>`SELECT bucket FROM rate_limit_windows WHERE bucket = 'register:not-an-address'`;
    }
    assert.equal(stored.length, 1, 'the counts of the junk bucket reached PostgreSQL');
  });

  test('wrong admin tokens: 401 up to the limit, then 429 even for the right token; the right token from elsewhere works and is never limited', async () => {
    await inOneWindow(20_000, async () => {
      const guesser = '203.0.113.10';
      for (let i = 0; i < LIMIT; i++) {
        assertProblem(await withToken.request('GET', '/webhooks', { token: `wrong-admin-token-${i}-0123456789`, headers: from(guesser) }), 401, 'unauthorized', `guess ${i + 1}`);
      }
      const refused = await withToken.request('GET', '/webhooks', { token: 'wrong-admin-token-x-0123456789', headers: from(guesser) });
      assertProblem(refused, 429, 'rate-limited', 'a guess over the limit');
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      // No answer tells the guesser which token was right.
      assertProblem(await withToken.request('GET', '/webhooks', { token: TEST_ADMIN_TOKEN, headers: from(guesser) }), 429, 'rate-limited', 'the right token from the guesser');
      assertProblem(await withToken.request('POST', '/courses', { token: TEST_ADMIN_TOKEN, headers: from(guesser), body: { id: 'guessed', title: 'x', capacity: 1 } }), 429, 'rate-limited', 'another admin route');
      assert.equal((await withToken.request('GET', '/webhooks', { token: TEST_ADMIN_TOKEN, headers: from('203.0.113.11') })).status, 200, 'the right token from another address');
      for (let i = 0; i < 3 * LIMIT; i++) {
        assert.equal((await withToken.request('GET', '/webhooks', { token: TEST_ADMIN_TOKEN, headers: from('203.0.113.12') })).status, 200, `admin request ${i + 1} with the right token`);
      }
    });
  });

  test('/metrics: loopback is open; from elsewhere the METRICS_TOKEN bearer is needed, and without METRICS_TOKEN it is refused', async () => {
    const outside = '203.0.113.20';
    const scrape = (client: Client, headers: Record<string, string>, token?: string) => client.request('GET', '/metrics', { headers, ...(token ? { token } : {}) });
    for (const client of [withToken, withoutToken]) {
      const local = await scrape(client, {});
      assert.equal(local.status, 200, 'a loopback client, no token');
      assert.match(local.headers.get('content-type') ?? '', /^text\/plain/);
    }
    assertProblem(await scrape(withToken, from(outside)), 401, 'unauthorized', 'no token from elsewhere');
    assert.equal((await scrape(withToken, from(outside))).headers.get('www-authenticate'), 'Bearer');
    assertProblem(await scrape(withToken, from(outside), 'not-the-metrics-token-0123'), 401, 'unauthorized', 'a wrong token');
    assertProblem(await scrape(withToken, from(outside), TEST_ADMIN_TOKEN), 401, 'unauthorized', 'the admin token is not the metrics token');
    const allowed = await scrape(withToken, from(outside), METRICS_TOKEN);
    assert.equal(allowed.status, 200, 'the metrics token from elsewhere');
    assert.match(allowed.headers.get('content-type') ?? '', /^text\/plain/);
    assertProblem(await scrape(withoutToken, from(outside)), 401, 'unauthorized', 'no METRICS_TOKEN: elsewhere is refused');
    assertProblem(await scrape(withoutToken, from(outside), METRICS_TOKEN), 401, 'unauthorized', 'no METRICS_TOKEN: any token is refused');
    assert.match((await scrape(withoutToken, from(outside))).body.detail, /METRICS_TOKEN/);
    // X-Forwarded-For from a client on this machine: that client is loopback too.
    assert.equal((await scrape(withoutToken, from('127.0.0.1'))).status, 200);

    // Wrong metrics tokens cannot be guessed at speed.
    await inOneWindow(20_000, async () => {
      const guesser = '203.0.113.21';
      for (let i = 0; i < LIMIT; i++) assertProblem(await scrape(withToken, from(guesser), `wrong-metrics-${i}-0123456789`), 401, 'unauthorized', `guess ${i + 1}`);
      assertProblem(await scrape(withToken, from(guesser), METRICS_TOKEN), 429, 'rate-limited', 'the right token after the guesses');
    });
  });
});
