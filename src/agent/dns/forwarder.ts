// Names outside the cluster go to the host's resolvers: the nameservers of `--resolv-conf` (default
// /etc/resolv.conf, or systemd-resolved's real upstream file when /etc/resolv.conf only names its stub
// 127.0.0.53, as the kubelet does), or a stub domain's own servers. Each query goes over UDP from a
// fresh random port (source-port randomisation against spoofed answers), is retried over TCP when the
// answer is truncated, and moves to the next upstream on timeout, SERVFAIL or REFUSED. Answers are
// cached (cache.ts); identical questions in flight share one upstream query; when all upstreams fail a
// stale cached answer is better than none. With no upstream at all the answer is SERVFAIL at once.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { randomInt } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import { parseResolvConf } from '../pods/sandbox.js';
import { DnsCache, type CachedMessage, type Rcode } from './cache.js';
import type { Upstream } from './config.js';
import { canonicalName } from './names.js';
import { plausibleMessage } from './wire.js';

export const SYSTEMD_RESOLVED_STUB = '127.0.0.53';
export const SYSTEMD_RESOLVED_CONF = '/run/systemd/resolve/resolv.conf';
/** The EDNS payload we offer upstreams (DNS flag day 2020's safe size). */
const UPSTREAM_UDP_SIZE = 1232;

/**
 * The resolv.conf the agent forwards to. An explicit `--resolv-conf` is taken as given; the default
 * /etc/resolv.conf is swapped for systemd-resolved's upstream list when it names only the stub (the
 * stub would answer the agent, but a loop-prone loopback hop is what the kubelet avoids too).
 */
export function upstreamResolvConf(explicit: string | undefined): string {
  if (explicit) return explicit;
  try {
    const cfg = parseResolvConf(readFileSync('/etc/resolv.conf', 'utf8'));
    if (cfg.servers.includes(SYSTEMD_RESOLVED_STUB) && existsSync(SYSTEMD_RESOLVED_CONF)) return SYSTEMD_RESOLVED_CONF;
  } catch {
    // no /etc/resolv.conf: no upstream
  }
  return '/etc/resolv.conf';
}

/** The nameservers of a resolv.conf, minus our own addresses (forwarding to ourselves would loop). */
export function readUpstreams(path: string, own: string[] = []): Upstream[] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { return []; }
  return parseResolvConf(text).servers
    .map((s) => s.replace(/%.*$/, ''))                      // fe80::1%eth0: the zone is the host's business
    .filter((s) => isIP(s) && !own.includes(s))
    .map((host) => ({ host, port: 53 }));
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  cache?: DnsCache;
  /** Per upstream attempt (default 2 s). */
  timeoutMs?: number;
  /** Upstream queries in flight at most (CoreDNS's forward max_concurrent: 1000); beyond, REFUSED. */
  maxInFlight?: number;
}

export interface ForwardQuestion { name: string; type: string; klass?: string; checkingDisabled?: boolean }

export class Forwarder {
  readonly cache: DnsCache;
  private upstreams: Upstream[];
  private preferred = 0;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private readonly pending = new Map<string, Promise<CachedMessage>>();
  /** Counters for logs and the benchmark. */
  readonly stats = { queries: 0, cacheHits: 0, stale: 0, upstreamErrors: 0, tcpRetries: 0, refused: 0 };

  constructor(o: ForwarderOptions) {
    this.upstreams = o.upstreams;
    this.cache = o.cache ?? new DnsCache();
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.maxInFlight = o.maxInFlight ?? 1000;
  }

  setUpstreams(u: Upstream[]): void {
    if (JSON.stringify(u) === JSON.stringify(this.upstreams)) return;
    this.upstreams = u;
    this.preferred = 0;
  }

  get upstreamCount(): number { return this.upstreams.length; }

  /** The cached answer if fresh (synchronous: the server's fast path), else undefined. */
  cached(q: ForwardQuestion): CachedMessage | undefined {
    const m = this.cache.get(DnsCache.key(q.name, q.type, q.klass));
    if (m) this.stats.cacheHits++;
    return m;
  }

  /** Resolves a question upstream (the stub domain's servers when given), through the cache. */
  async resolve(q: ForwardQuestion, servers?: Upstream[]): Promise<CachedMessage> {
    this.stats.queries++;
    const key = DnsCache.key(q.name, q.type, q.klass);
    const hit = this.cache.get(key);
    if (hit) { this.stats.cacheHits++; return hit; }
    const list = servers ?? this.upstreams;
    if (!list.length) return this.cache.getStale(key) ?? failure('SERVFAIL');
    const shared = this.pending.get(key);
    if (shared) return shared;
    if (this.inFlight >= this.maxInFlight) { this.stats.refused++; return failure('REFUSED'); }
    this.inFlight++;
    const p = this.exchangeAny(q, list, servers === undefined).then((msg) => {
      if (msg.rcode === 'NOERROR' || msg.rcode === 'NXDOMAIN') { this.cache.set(key, msg); return msg; }
      const stale = this.cache.getStale(key);
      if (stale) this.stats.stale++;
      return stale ?? msg;
    }).finally(() => { this.inFlight--; this.pending.delete(key); });
    this.pending.set(key, p);
    return p;
  }

  private async exchangeAny(q: ForwardQuestion, list: Upstream[], rotate: boolean): Promise<CachedMessage> {
    let last: CachedMessage = failure('SERVFAIL');
    const start = rotate ? this.preferred % list.length : 0;
    for (let i = 0; i < list.length; i++) {
      const idx = (start + i) % list.length;
      try {
        const msg = await exchange(list[idx]!, q, this.timeoutMs, () => this.stats.tcpRetries++);
        if (msg.rcode === 'SERVFAIL' || msg.rcode === 'REFUSED') { last = msg; this.stats.upstreamErrors++; continue; }
        if (rotate) this.preferred = idx;                   // stick with the upstream that answered
        return msg;
      } catch {
        this.stats.upstreamErrors++;
      }
    }
    return last;
  }
}

export function failure(rcode: Rcode): CachedMessage {
  return { rcode, answers: [], authorities: [], additionals: [] };
}

/** One question to one upstream: UDP, then TCP when the UDP answer is truncated. */
export async function exchange(u: Upstream, q: ForwardQuestion, timeoutMs: number, onTcp?: () => void): Promise<CachedMessage> {
  const id = randomInt(0, 65536);
  const query = dnsPacket.encode({
    type: 'query', id, flags: dnsPacket.RECURSION_DESIRED | (q.checkingDisabled ? dnsPacket.CHECKING_DISABLED : 0),
    questions: [{ name: q.name, type: q.type as any, class: (q.klass ?? 'IN') as any }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: UPSTREAM_UDP_SIZE, flags: 0 } as any],
  });
  const udp = await udpExchange(u, query, id, q, timeoutMs);
  if (!udp.flag_tc) return toMessage(udp);
  onTcp?.();
  return toMessage(await tcpExchange(u, query, id, q, timeoutMs));
}

function matches(resp: dnsPacket.DecodedPacket, id: number, q: ForwardQuestion): boolean {
  const rq = resp.questions?.[0];
  return resp.id === id && resp.type === 'response' && rq !== undefined
    && canonicalName(rq.name) === canonicalName(q.name) && rq.type === q.type;
}

function udpExchange(u: Upstream, query: Buffer, id: number, q: ForwardQuestion, timeoutMs: number): Promise<dnsPacket.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(u.host) ? 'udp6' : 'udp4');
    const done = (err: Error | undefined, resp?: dnsPacket.DecodedPacket) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err); else resolve(resp!);
    };
    const timer = setTimeout(() => done(new Error(`${u.host}:${u.port}: timeout`)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('message', (buf, rinfo) => {
      // Only the upstream asked may answer, with our id and our question; anything else is ignored.
      if (rinfo.port !== u.port || rinfo.address.replace(/^::ffff:/, '') !== u.host) return;
      let resp: dnsPacket.DecodedPacket;
      if (!plausibleMessage(buf)) return;
      try { resp = dnsPacket.decode(buf); } catch { return; }
      if (matches(resp, id, q)) done(undefined, resp);
    });
    sock.send(query, u.port, u.host, (err) => { if (err) done(err); });
  });
}

function tcpExchange(u: Upstream, query: Buffer, id: number, q: ForwardQuestion, timeoutMs: number): Promise<dnsPacket.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.host, port: u.port });
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, resp?: dnsPacket.DecodedPacket) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err); else resolve(resp!);
    };
    const timer = setTimeout(() => done(new Error(`${u.host}:${u.port}: TCP timeout`)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const n = buf.readUInt16BE(0);
      if (buf.length < 2 + n) return;
      try {
        if (!plausibleMessage(buf.subarray(2, 2 + n))) return done(new Error(`${u.host}:${u.port}: malformed TCP answer`));
        const resp = dnsPacket.decode(buf.subarray(2, 2 + n));
        if (!matches(resp, id, q)) return done(new Error(`${u.host}:${u.port}: mismatched TCP answer`));
        done(undefined, resp);
      } catch (e) {
        done(e as Error);
      }
    });
    sock.on('end', () => done(new Error(`${u.host}:${u.port}: TCP connection closed early`)));
  });
}

function toMessage(p: dnsPacket.DecodedPacket): CachedMessage {
  return {
    rcode: ((p as unknown as { rcode: string }).rcode ?? 'SERVFAIL') as Rcode,
    answers: (p.answers ?? []) as Answer[],
    authorities: (p.authorities ?? []) as Answer[],
    additionals: ((p.additionals ?? []) as Answer[]).filter((a) => a.type !== 'OPT'),
  };
}
