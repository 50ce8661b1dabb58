// DNS name and address helpers shared by the records, the hosts file parser and the server: names are
// compared lower-case without the trailing dot; IPv6 addresses are keyed in their full 32-nibble form so
// `fd00::1` and `fd00:0::1` are one key, and reverse (in-addr.arpa / ip6.arpa) names map back to them.
import { isIPv4, isIPv6 } from 'node:net';

/** `Web.NS.svc.Cluster.Local.` → `web.ns.svc.cluster.local`. */
export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The 32 hex nibbles of an IPv6 address, or undefined when it is not one. */
export function ipv6Nibbles(ip: string): string | undefined {
  if (!isIPv6(ip)) return undefined;
  let text = ip.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + ((o[0]! << 8) | o[1]!).toString(16) + ':' + ((o[2]! << 8) | o[3]!).toString(16);
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return undefined;
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** The key an address is filed under: IPv4 as written, IPv6 as 32 nibbles. */
export function ipKey(ip: string): string | undefined {
  if (isIPv4(ip)) return ip;
  return ipv6Nibbles(ip);
}

/** `5.1.42.10.in-addr.arpa` → `10.42.1.5`; an ip6.arpa name → its nibble key; else undefined. */
export function reverseNameToKey(name: string): string | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256)) return undefined;
    return parts.reverse().join('.');
  }
  if (name.endsWith('.ip6.arpa')) {
    const parts = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (parts.length !== 32 || !parts.every((p) => /^[0-9a-f]$/.test(p))) return undefined;
    return parts.reverse().join('');
  }
  return undefined;
}

/** The reverse name of an address (for tests and the additional section). */
export function reverseName(ip: string): string {
  if (isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  return `${[...(ipv6Nibbles(ip) ?? '')].reverse().join('.')}.ip6.arpa`;
}

/** How CoreDNS names an endpoint without a hostname: its address with dashes (`10-42-1-5`). */
export function dashedIp(ip: string): string {
  return isIPv4(ip) ? ip.replaceAll('.', '-') : ip.replaceAll(':', '-');
}

/** The address a pod record's first label spells (`10-42-1-5` or `fd00--5`), or undefined. */
export function ipFromDashed(label: string): string | undefined {
  if (label.split('-').length === 4 && !label.includes('--')) {
    const ip = label.replaceAll('-', '.');
    return isIPv4(ip) ? ip : undefined;
  }
  const ip = label.replaceAll('-', ':');
  return isIPv6(ip) ? ip : undefined;
}
