// The forwarder's answer cache: bounded (least recently used goes first), positive answers kept for
// their smallest TTL, denials (NXDOMAIN / NODATA) for the SOA's minimum as RFC 2308 says, both capped
// as CoreDNS's cache caps them. An expired entry is kept a while longer to be served stale (RFC 8767,
// CoreDNS's serve_stale) when every upstream fails: a node cut off from its resolvers keeps resolving
// the names it has seen, with a short TTL so clients come back soon.
import type { Answer } from 'dns-packet';

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'NOTIMP';

export interface CachedMessage {
  rcode: Rcode;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

export interface CacheOptions {
  maxEntries?: number;
  /** Caps (seconds): CoreDNS's cache defaults, 3600 for answers and 1800 for denials. */
  maxTtl?: number;
  maxDenialTtl?: number;
  /** Floor for answers (CoreDNS: 5 s), so TTL-0 answers still absorb a burst. */
  minTtl?: number;
  /** How long after expiry an entry may still be served when upstreams fail (CoreDNS serve_stale: 1 h). */
  staleSeconds?: number;
  now?: () => number;
}

interface Entry { msg: CachedMessage; storedAt: number; expiresAt: number; staleUntil: number }

/** The TTL stale answers are given (RFC 8767 suggests 30 s). */
export const STALE_TTL = 30;

export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  private readonly max: number;
  private readonly maxTtl: number;
  private readonly maxDenialTtl: number;
  private readonly minTtl: number;
  private readonly staleMs: number;
  private readonly now: () => number;

  constructor(o: CacheOptions = {}) {
    this.max = o.maxEntries ?? 10_000;
    this.maxTtl = o.maxTtl ?? 3600;
    this.maxDenialTtl = o.maxDenialTtl ?? 1800;
    this.minTtl = o.minTtl ?? 5;
    this.staleMs = (o.staleSeconds ?? 3600) * 1000;
    this.now = o.now ?? Date.now;
  }

  static key(name: string, type: string, klass = 'IN'): string {
    return `${name.toLowerCase().replace(/\.$/, '')}|${type}|${klass}`;
  }

  get size(): number { return this.entries.size; }

  /** How long (s) a message may be cached, or 0 when it must not be. */
  ttlOf(msg: CachedMessage): number {
    const soa = msg.authorities.find((a) => a.type === 'SOA') as { ttl?: number; data: { minimum?: number } } | undefined;
    if (msg.rcode === 'NXDOMAIN' || (msg.rcode === 'NOERROR' && !msg.answers.length)) {
      if (!soa) return 0;                                   // RFC 2308: no SOA, no negative caching
      return Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0, this.maxDenialTtl);
    }
    if (msg.rcode !== 'NOERROR') return 0;
    const ttls = [...msg.answers, ...msg.authorities].filter((a) => a.type !== 'OPT').map((a) => (a as { ttl?: number }).ttl ?? 0);
    return Math.max(this.minTtl, Math.min(this.maxTtl, ...ttls));
  }

  set(key: string, msg: CachedMessage): void {
    const ttl = this.ttlOf(msg);
    if (ttl <= 0) return;
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { msg, storedAt: now, expiresAt: now + ttl * 1000, staleUntil: now + ttl * 1000 + this.staleMs });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  /** A fresh entry with its TTLs counted down, or undefined. */
  get(key: string): CachedMessage | undefined {
    return this.lookup(key, false);
  }

  /** An entry past its TTL but within the stale window (TTLs set to STALE_TTL), or a fresh one. */
  getStale(key: string): CachedMessage | undefined {
    return this.lookup(key, true);
  }

  private lookup(key: string, allowStale: boolean): CachedMessage | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const now = this.now();
    if (now >= e.staleUntil) { this.entries.delete(key); return undefined; }
    const fresh = now < e.expiresAt;
    if (!fresh && !allowStale) return undefined;
    // Recently used: to the back of the eviction order.
    this.entries.delete(key);
    this.entries.set(key, e);
    const elapsed = Math.floor((now - e.storedAt) / 1000);
    const age = (a: Answer): Answer => (a.type === 'OPT' ? a : { ...a, ttl: fresh ? Math.max(0, ((a as { ttl?: number }).ttl ?? 0) - elapsed) : STALE_TTL } as Answer);
    return { rcode: e.msg.rcode, answers: e.msg.answers.map(age), authorities: e.msg.authorities.map(age), additionals: e.msg.additionals.map(age) };
  }
}
