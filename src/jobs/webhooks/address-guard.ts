// Keeps webhooks from reaching inside the network (SSRF): a webhook URL may not point at a
// loopback, private, link-local, carrier-grade NAT, multicast or unspecified address, unless
// WEBHOOK_ALLOW_PRIVATE is set. Checked when the webhook is created, and again at every
// delivery on the address actually connected to (a DNS name may change its answer).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

const blocked = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3],
] as const) blocked.addSubnet(network, prefix, 'ipv4');
// (IPv4-mapped IPv6 is unwrapped in isInternalAddress: a ::ffff:0:0/96 rule here would also
// match every plain IPv4 address, since BlockList checks IPv4 against mapped IPv6 rules.)
for (const [network, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  blocked.addSubnet(network, prefix, 'ipv6');
}

export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  return blocked.check(address, family === 6 ? 'ipv6' : 'ipv4');
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
