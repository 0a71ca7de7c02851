// Keeps webhooks from reaching inside the network (SSRF): a webhook URL may not point at a
// loopback, private, link-local, carrier-grade NAT, multicast or unspecified address, unless
// WEBHOOK_ALLOW_PRIVATE is set. Checked when the webhook is created, and again at every
// delivery on the address actually connected to (a DNS name may change its answer).
// An IPv6 address that carries an IPv4 address a translator or tunnel forwards to (NAT64,
// 6to4, Teredo, IPv4-mapped and -compatible) is judged by that IPv4 address: `64:ff9b::7f00:1`
// reaches 127.0.0.1 through a NAT64 gateway.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { ipv4FromWords, ipv6Words } from './ip-address.ts';

const blocked = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3],
] as const) blocked.addSubnet(network, prefix, 'ipv4');
// (IPv4-mapped IPv6 is unwrapped in isInternalAddress: a ::ffff:0:0/96 rule here would also
// match every plain IPv4 address, since BlockList checks IPv4 against mapped IPv6 rules.)
// 64:ff9b:1::/48 is local-use NAT64 (RFC 8215): a network's own translator, to wherever it was
// set up to reach; fec0::/10 is the deprecated site-local range.
for (const [network, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['64:ff9b:1::', 48],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv6');
}

/** The IPv4 addresses an IPv6 address forwards to, by the prefix it starts with. */
function embeddedIpv4(words: number[]): string[] {
  const [w0, w1, w2, w3, w4, w5, w6, w7] = words as [number, number, number, number, number, number, number, number];
  const v4 = (high: number, low: number) => ipv4FromWords(high, low);
  // ::a.b.c.d (compatible, RFC 4291 2.5.5.1), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT, RFC 2765).
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && ((w4 === 0 && (w5 === 0 || w5 === 0xffff)) || (w4 === 0xffff && w5 === 0))) return [v4(w6, w7)];
  if (w0 === 0x64 && w1 === 0xff9b && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0) return [v4(w6, w7)]; // NAT64 well-known /96 (RFC 6052)
  if (w0 === 0x2002) return [v4(w1, w2)]; // 6to4 (RFC 3056)
  if (w0 === 0x2001 && w1 === 0) return [v4(w2, w3), v4(~w6 & 0xffff, ~w7 & 0xffff)]; // Teredo: server, and client (inverted; RFC 4380)
  return [];
}

export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 4) return blocked.check(address, 'ipv4');
  if (blocked.check(address, 'ipv6')) return true;
  const words = ipv6Words(address);
  return words !== undefined && embeddedIpv4(words).some((ipv4) => blocked.check(ipv4, 'ipv4'));
}

export class InternalAddressError extends Error {
  override name = 'InternalAddressError';
}

/** The hostname of a URL without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** Resolves the URL's host and refuses it if any address is internal. */
export async function assertPublicUrl(url: URL): Promise<void> {
  const host = hostOf(url);
  const addresses: LookupAddress[] = isIP(host)
    ? [{ address: host, family: isIP(host) }]
    : await new Promise((resolve, reject) => dnsLookup(host, { all: true }, (error, found) => (error ? reject(error) : resolve(found))));
  const internal = addresses.find((a) => isInternalAddress(a.address));
  if (internal) throw new InternalAddressError(`${host} is an internal address (${internal.address}); set WEBHOOK_ALLOW_PRIVATE=true to allow it`);
}

/** A lookup for outgoing connections that refuses internal addresses (used by the webhook client). */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 0);
    const list = addresses as LookupAddress[];
    const internal = list.find((a) => isInternalAddress(a.address));
    if (internal) return callback(new InternalAddressError(`${hostname} resolves to an internal address (${internal.address})`), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
};
