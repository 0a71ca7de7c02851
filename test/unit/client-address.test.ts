// Who the client is: TRUST_PROXY's settings, the trust function proxy-addr walks X-Forwarded-For
// with (from the right), the rate-limit bucket of an address (IPv6 per /64), and loopback.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { isLoopback, rateLimitBucket, trustProxyFunction, unknownForwardedClient } from '../../src/http/client-address.ts';
import { parseTrustProxy } from '../../src/security/trust-proxy.ts';

test('TRUST_PROXY: unset and false trust nobody, true is one hop, a number is that many, a list is addresses and CIDRs', () => {
  assert.equal(parseTrustProxy(undefined), false);
  assert.equal(parseTrustProxy('false'), false);
  assert.equal(parseTrustProxy('true'), 1);
  assert.equal(parseTrustProxy('2'), 2);
  assert.deepEqual(parseTrustProxy('10.0.0.5, 192.168.0.0/16,fd00::/8 ,loopback'), ['10.0.0.5', '192.168.0.0/16', 'fd00::/8', 'loopback']);
  for (const bad of ['yes', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/1', '300.1.1.1', '99']) {
    assert.throws(() => parseTrustProxy(bad), /TRUST_PROXY/, bad);
  }
  assert.throws(() => loadConfig({ TRUST_PROXY: 'nginx' }), ConfigError);
  assert.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, 1);
});

test('trusting one hop believes only the entry the nearest proxy appended, not what the client wrote before it', () => {
  const trust = trustProxyFunction(1);
  assert.ok(trust);
  // proxy-addr's walk: hop 0 is the socket's peer, then X-Forwarded-For from the right.
  assert.equal(trust('127.0.0.1', 0), true);
  assert.equal(trust('198.51.100.7', 1), false);
  assert.equal(trustProxyFunction(false), false);
  const listed = trustProxyFunction(['10.0.0.0/8', '::1', 'loopback']);
  assert.ok(listed);
  assert.equal(listed('10.1.2.3', 0), true);
  assert.equal(listed('::ffff:10.1.2.3', 0), true, 'an IPv4-mapped peer matches its IPv4 rule');
  assert.equal(listed('127.0.0.1', 3), true);
  assert.equal(listed('198.51.100.7', 0), false);
  assert.equal(listed('not an address', 0), false);
});

test('the rate-limit bucket: IPv4 per address, IPv6 per /64, IPv4-mapped IPv6 as IPv4', () => {
  assert.equal(rateLimitBucket('198.51.100.7'), '198.51.100.7');
  assert.equal(rateLimitBucket('::ffff:198.51.100.7'), '198.51.100.7');
  assert.equal(rateLimitBucket('::ffff:c633:6407'), '198.51.100.7');
  assert.equal(rateLimitBucket('2001:db8:a:b::1'), '2001:db8:a:b::/64');
  assert.equal(rateLimitBucket('2001:DB8:A:B:ffff:ffff:ffff:ffff'), '2001:db8:a:b::/64');
  assert.equal(rateLimitBucket('2001:0db8:000a:000b:1:2:3:4'), '2001:db8:a:b::/64');
  assert.notEqual(rateLimitBucket('2001:db8:a:c::1'), rateLimitBucket('2001:db8:a:b::1'));
  assert.equal(rateLimitBucket('::1'), '0:0:0:0::/64');
  assert.equal(rateLimitBucket('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(rateLimitBucket('2001:db8::1.2.3.4'), '2001:db8:0:0::/64');
  // Not an address: one shared bucket, never a key of the client's making.
  assert.equal(rateLimitBucket('x'.repeat(5000)), 'not-an-address');
  assert.equal(rateLimitBucket(undefined), 'not-an-address');
});

test('loopback: 127.0.0.0/8 and ::1, also IPv4-mapped; nothing else', () => {
  for (const address of ['127.0.0.1', '127.0.0.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(address), true, address);
  for (const address of ['10.0.0.1', '198.51.100.7', '::', '::ffff:10.0.0.1', '2001:db8::1', '', 'localhost']) assert.equal(isLoopback(address), false, address);
});

test('a request forwards for an unknown client when its proxy is not trusted, or it carries Forwarded alone', () => {
  const sent = (headers: Record<string, string>, peer = '127.0.0.1') => ({ ip: peer, socket: { remoteAddress: peer }, headers });
  const untrusted = unknownForwardedClient(false);
  assert.equal(untrusted(sent({})), false, 'no forwarding header');
  assert.equal(untrusted(sent({ 'x-forwarded-for': '198.51.100.7' })), true, 'TRUST_PROXY unset');
  assert.equal(untrusted(sent({ forwarded: 'for=198.51.100.7' })), true, 'Forwarded, TRUST_PROXY unset');
  const elsewhere = unknownForwardedClient(['10.0.0.5']);
  assert.equal(elsewhere(sent({ 'x-forwarded-for': '198.51.100.7' })), true, 'a local proxy TRUST_PROXY does not list');
  assert.equal(elsewhere(sent({ 'x-forwarded-for': '198.51.100.7' }, '10.0.0.5')), false, 'the listed proxy');
  const local = unknownForwardedClient(['loopback']);
  assert.equal(local(sent({ 'x-forwarded-for': '198.51.100.7' })), false, 'a trusted local proxy: the address is its client');
  assert.equal(local(sent({ forwarded: 'for=198.51.100.7' })), true, 'Forwarded alone: the address is never read from it');
  assert.equal(unknownForwardedClient(1)(sent({ 'x-forwarded-for': '127.0.0.1' })), false, 'one trusted hop');
});
