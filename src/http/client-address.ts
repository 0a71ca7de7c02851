// Owns who the client is: which X-Forwarded-For entries to believe (TRUST_PROXY, parsed in
// src/security/trust-proxy.ts), the bucket a client address is rate limited in, and whether it
// is this machine (loopback, and no proxy's client behind it).
//
// X-Forwarded-For is a list each proxy appends its peer to; the entries left of the nearest
// proxy's are whatever the client wrote. So the address is found from the right: the socket's
// peer and the entries after it are skipped while they are trusted proxies, and the first one
// that is not is the client (proxy-addr, run by Fastify, walks the list so; this file says
// which hops to trust).
import { BlockList, isIP } from 'node:net';
import { ipv6Words, unmapIpv4 } from '../security/ip-address.ts';
import { type TrustProxy, trustedList } from '../security/trust-proxy.ts';

/**
 * Fastify's trustProxy for a setting: a function of (address, hop), hop 0 being the socket's
 * peer. (Fastify itself takes `true` as "trust every hop", so the client picks its own address,
 * and a bare number as "trust none"; a function says exactly what is meant.)
 */
export function trustProxyFunction(setting: TrustProxy): false | ((address: string, hop: number) => boolean) {
  if (setting === false) return false;
  if (typeof setting === 'number') return function trustHops(_address, hop) { return hop < setting; };
  const list = trustedList(setting);
  return function trustListed(address) {
    const family = isIP(address);
    // BlockList matches IPv4-mapped IPv6 addresses against IPv4 rules.
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * The rate-limit bucket of a client address: an IPv4 address is its own; an IPv6 address counts
 * with its whole /64, the smallest network one subscriber is given (RFC 6177), so a client
 * cannot take a fresh budget from each of its 2^64 addresses. IPv4-mapped IPv6 is IPv4.
 */
export function rateLimitBucket(address: string | undefined): string {
  // Not an address (a proxy's garbage, a socket already gone): one shared bucket, so junk
  // cannot mint budgets, nor put a key past the index's size limit into the counters table.
  if (typeof address !== 'string' || isIP(address.replace(/%.*$/, '')) === 0) return 'not-an-address';
  const ipv4 = unmapIpv4(address);
  const words = ipv6Words(ipv4);
  if (!words) return ipv4;
  return `${words.slice(0, 4).map((word) => word.toString(16)).join(':')}::/64`;
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1, and their IPv4-mapped forms: a client on this machine. */
export function isLoopback(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** The parts of a request that say who sent it (a FastifyRequest has them). */
type Sender = { ip: string; socket: { remoteAddress?: string | undefined }; headers: Record<string, string | string[] | undefined> };

/**
 * For a TRUST_PROXY setting: whether a request forwards for a client whose address is not known
 * here: it carries X-Forwarded-For or Forwarded (RFC 7239), but its peer is not a trusted proxy
 * (the header is not believed, so the address is the proxy's), or it carries Forwarded alone
 * (which the address is never read from). A proxy on this machine then makes every client of
 * its look like loopback.
 */
export function unknownForwardedClient(setting: TrustProxy): (request: Sender) => boolean {
  const trust = trustProxyFunction(setting);
  return function forwardsUnknown(request) {
    const forwardedFor = request.headers['x-forwarded-for'] !== undefined;
    if (!forwardedFor) return request.headers['forwarded'] !== undefined;
    const peer = request.socket.remoteAddress;
    return trust === false || peer === undefined || !trust(peer, 0);
  };
}
