// Owns who the client is: which X-Forwarded-For entries to believe (TRUST_PROXY), the bucket a
// client address is rate limited in, and whether it is this machine (loopback, and no proxy's
// client behind it).
//
// X-Forwarded-For is a list each proxy appends its peer to; the entries left of the nearest
// proxy's are whatever the client wrote. So the address is found from the right: the socket's
// peer and the entries after it are skipped while they are trusted proxies, and the first one
// that is not is the client (proxy-addr, run by Fastify, walks the list so; this file says
// which hops to trust).
import { BlockList, isIP } from 'node:net';
import { ipv6Words, unmapIpv4 } from '../security/ip-address.ts';

/** false: the socket's peer is the client; a number: that many proxy hops; a list: the proxies' addresses/CIDRs. */
export type TrustProxy = false | number | readonly string[];

/** proxy-addr's names for ranges, kept for TRUST_PROXY lists. */
const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * TRUST_PROXY: unset or `false`: no proxy; `true`: one proxy (the nearest hop, i.e. `1`); a
 * whole number: that many hops; otherwise a comma-separated list of addresses, CIDRs and the
 * names loopback, linklocal, uniquelocal. Throws with what is wrong.
 */
export function parseTrustProxy(raw: string | undefined): TrustProxy {
  const value = raw?.trim() ?? '';
  if (value === '' || value === 'false' || value === '0') return false;
  if (value === 'true') return 1;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 32) throw new Error(`TRUST_PROXY counts proxy hops up to 32; got ${value}`);
    return hops;
  }
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (const entry of entries) trustedList([entry]); // throws on the first bad entry
  return entries;
}

function trustedList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries.flatMap((e) => NAMED_RANGES[e] ?? [e])) {
    const [, address = '', prefixText] = /^([^/]*)(?:\/(\d{1,3}))?$/.exec(entry) ?? [];
    const family = isIP(address);
    const prefix = prefixText === undefined ? undefined : Number(prefixText);
    if (family === 0 || (prefix !== undefined && prefix > (family === 6 ? 128 : 32))) {
      throw new Error(`TRUST_PROXY: "${entry}" is not an address, a CIDR (10.0.0.0/8, fd00::/8) or one of loopback, linklocal, uniquelocal`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  return list;
}

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
