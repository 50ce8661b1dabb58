// CIDR text as Kubernetes reads it (netutils.ParseCIDRSloppy): an IPv4 or IPv6 address, a slash and a
// prefix length within the family's width; host bits may be set ("10.0.0.1/8" is 10.0.0.0/8). Shared
// by API validation (NetworkPolicy ipBlock) and the agent (which writes the network address to nft).
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** The address bytes with host bits cleared. */
  bytes: number[];
  bits: number;
}

export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const len = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(len)) return undefined;
  const bits = Number(len);
  let bytes: number[];
  let family: 4 | 6;
  if (isIPv4(ip)) {
    family = 4;
    bytes = ip.split('.').map(Number);
  } else if (isIPv6(ip) && !ip.includes('%')) {
    family = 6;
    bytes = ipv6Bytes(ip);
  } else {
    return undefined;
  }
  if (bits > bytes.length * 8) return undefined;
  return { family, bytes: mask(bytes, bits), bits };
}

function ipv6Bytes(ip: string): number[] {
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => { const n = parseInt(g, 16); return [n >> 8, n & 0xff]; });
}

function mask(bytes: number[], bits: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return keep === 8 ? b : b & ((0xff << (8 - keep)) & 0xff);
  });
}

/** Whether `inner` lies inside `outer` and is smaller than it (an ipBlock's `except` entry). */
export function isStrictSubset(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.bits <= outer.bits) return false;
  const m = mask(inner.bytes, outer.bits);
  return m.every((b, i) => b === outer.bytes[i]);
}

/** The canonical text: network address and prefix (`10.0.0.0/8`); IPv6 in full hex groups. */
export function formatCidr(c: Cidr): string {
  if (c.family === 4) return `${c.bytes.join('.')}/${c.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((c.bytes[i]! << 8) | c.bytes[i + 1]!).toString(16));
  return `${groups.join(':')}/${c.bits}`;
}

/** A dotted-quad IPv4 address as an unsigned 32-bit number; undefined for anything else. */
export function ipToNumber(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** An unsigned 32-bit number as a dotted-quad IPv4 address. */
export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Whether the address `ip` (IPv4 or IPv6 text) lies inside `c`. */
export function cidrContains(c: Cidr, ip: string): boolean {
  const a = parseCidr(`${ip}/${c.family === 4 ? 32 : 128}`);
  return a !== undefined && a.family === c.family && mask(a.bytes, c.bits).every((b, i) => b === c.bytes[i]);
}
