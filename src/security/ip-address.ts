// IPv6 addresses as their eight 16-bit words, and the IPv4 addresses some of them carry inside
// (RFC 4291 mapped and compatible, RFC 6052 NAT64, RFC 3056 6to4, RFC 4380 Teredo). Parsing is
// left to the WHATWG URL parser, which validates an address and writes it back in hex words only
// (`::ffff:1.2.3.4` becomes `::ffff:102:304`); only the `::` of that canonical form is expanded here.
import { isIP } from 'node:net';

/** The eight words of an IPv6 address (a zone, `%eth0`, is dropped); undefined for anything else. */
export function ipv6Words(address: string): number[] | undefined {
  if (typeof address !== 'string') return undefined;
  const bare = address.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return undefined;
  const canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const [head, tail] = canonical.split('::') as [string, string | undefined];
  const words = (part: string | undefined) => (part ? part.split(':').map((word) => Number.parseInt(word, 16)) : []);
  if (tail === undefined) return words(head);
  const [left, right] = [words(head), words(tail)];
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Two words as a dotted IPv4 address. */
export function ipv4FromWords(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** `::ffff:a.b.c.d` (IPv4-mapped, RFC 4291 section 2.5.5.2) as `a.b.c.d`; other addresses unchanged. */
export function unmapIpv4(address: string): string {
  const words = ipv6Words(address);
  if (!words || words.slice(0, 5).some((word) => word !== 0) || words[5] !== 0xffff) return address;
  return ipv4FromWords(words[6]!, words[7]!);
}
