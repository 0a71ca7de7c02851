// The edge with TRUST_PROXY unset and RATE_LIMIT_PER_MINUTE=0, on a real socket:
//   - a proxy on this machine (a loopback peer sending X-Forwarded-For or Forwarded that nothing
//     lets us believe) does not make its clients loopback: /metrics wants the METRICS_TOKEN from
//     them, and the first such request logs a warning naming TRUST_PROXY, once;
//   - wrong admin and metrics tokens still have a budget: 60 a minute per client, then 429 even
//     for the right token.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { assertProblem, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { inOneWindow } from '../support/rate-limit-window.ts';
import { useStack } from '../support/stack.ts';

const FAILURES_PER_MINUTE = 60; // FAILURES_PER_MINUTE_WITHOUT_LIMIT
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

const logLines: { msg: string; level: number }[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line));
    done();
  },
});
const stack = useStack({ server: { logger: pino({ level: 'warn' }, sink), rateLimitPerMinute: 0, metricsToken: METRICS_TOKEN } });

describe('the edge without TRUST_PROXY and without a rate limit', { timeout: 180_000 }, () => {
  test('/metrics: a loopback peer forwarding for someone is a proxy, not a local client; one warning names TRUST_PROXY', async () => {
    const scrape = (headers: Record<string, string>, token?: string) => stack.server.client.request('GET', '/metrics', { headers, ...(token ? { token } : {}) });
    assert.equal((await scrape({})).status, 200, 'a loopback client that forwards for nobody');
    assert.equal(logLines.filter((line) => /TRUST_PROXY/.test(line.msg)).length, 0, 'no warning without a proxy');
    assertProblem(await scrape({ 'x-forwarded-for': '198.51.100.7' }), 401, 'unauthorized', 'X-Forwarded-For from a local proxy');
    assertProblem(await scrape({ forwarded: 'for=198.51.100.7;proto=https' }), 401, 'unauthorized', 'Forwarded (RFC 7239) from a local proxy');
    assertProblem(await scrape({ 'x-forwarded-for': '127.0.0.1' }), 401, 'unauthorized', 'an untrusted X-Forwarded-For that claims loopback');
    assert.equal((await scrape({ 'x-forwarded-for': '198.51.100.7' }, METRICS_TOKEN)).status, 200, 'the metrics token through the proxy');
    const warnings = logLines.filter((line) => /TRUST_PROXY/.test(line.msg));
    assert.equal(warnings.length, 1, `one warning per process: ${JSON.stringify(warnings)}`);
    assert.equal(warnings[0]?.level, 40, 'a warning');
  });

  test('wrong admin tokens: 60 a minute per client, then 429 even for the right token', async () => {
    await inOneWindow(30_000, async () => {
      for (let i = 0; i < FAILURES_PER_MINUTE; i++) {
        assertProblem(await stack.server.client.request('GET', '/webhooks', { token: `wrong-admin-token-${i}-0123456789` }), 401, 'unauthorized', `guess ${i + 1}`);
      }
      assertProblem(await stack.server.client.request('GET', '/webhooks', { token: 'wrong-admin-token-x-0123456789' }), 429, 'rate-limited', 'a guess over the budget');
      assertProblem(await stack.server.client.request('GET', '/webhooks', { token: TEST_ADMIN_TOKEN }), 429, 'rate-limited', 'the right token after the guesses');
    });
  });

  test('wrong metrics tokens: 60 a minute per client, then 429 even for the right token', async () => {
    const proxied = { 'x-forwarded-for': '198.51.100.8' };
    // The admin guesses of the test before count in their own budget, not in this one.
    await inOneWindow(30_000, async () => {
      for (let i = 0; i < FAILURES_PER_MINUTE; i++) {
        assertProblem(await stack.server.client.request('GET', '/metrics', { headers: proxied, token: `wrong-metrics-${i}-0123456789` }), 401, 'unauthorized', `guess ${i + 1}`);
      }
      assertProblem(await stack.server.client.request('GET', '/metrics', { headers: proxied, token: METRICS_TOKEN }), 429, 'rate-limited', 'the right token after the guesses');
    });
  });
});
