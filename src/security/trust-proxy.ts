// TRUST_PROXY, the setting that says whose X-Forwarded-For entries to believe: parsed and
// checked here (config.ts reads it), applied per request by src/http/client-address.ts.
import { BlockList, isIP } from 'node:net';

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

/** The addresses and ranges of a TRUST_PROXY list; throws on the first bad entry. */
export function trustedList(entries: readonly string[]): BlockList {
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
