// The DNS server: UDP and TCP listeners on one address, each query answered from the cluster records
// (records.ts) or forwarded (forwarder.ts; stub domains to their own servers). Hostile input is the
// normal case for a port every pod can reach: a packet that does not decode is dropped, one that
// decodes but is not a single standard query gets FORMERR/NOTIMP, a response is never answered (no
// reflection loops), UDP answers longer than the client can take (512 bytes, or its EDNS size) go back
// truncated (TC) so it retries over TCP, and the work in flight is bounded (beyond it, drops).
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { isIPv6 } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, Question } from 'dns-packet';
import type { ClusterRecords, LocalAnswer } from './records.js';
import type { Forwarder } from './forwarder.js';
import type { CachedMessage } from './cache.js';
import type { Upstream } from './config.js';
import { canonicalName } from './names.js';
import { plausibleMessage } from './wire.js';
import type { Logger } from '../../util/log.js';

const RCODES: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
const OPCODE_QUERY = 0;
/** The largest UDP answer we send, whatever EDNS size a client offers (DNS flag day 2020). */
const MAX_UDP = 1232;
/** Our own EDNS payload size, announced in answers to EDNS queries. */
const OUR_UDP_SIZE = 1232;
const TCP_IDLE_MS = 10_000;

/** An encoded answer: a local one valid for records generation `gen`, a forwarded one (gen -1) until `until`. */
interface CachedAnswer { gen: number; until: number; buf: Buffer }
const ANSWER_CACHE_MAX = 20_000;

/** Messages longer than this are not remembered (a plain query is far shorter). */
const FAST_KEY_MAX = 300;

/**
 * The key of a query's remembered answer: the transport and every byte after the id (flags, counts,
 * the question as sent, any EDNS record). The answer is a function of exactly these bytes, so equal
 * keys mean equal answers (for one records generation); the question keeps its letter case, which
 * clients may randomise and expect echoed. Built natively (one latin1 string), since the agent runs
 * V8 without its JIT and a byte loop in JavaScript would cost more than it saves.
 */
export function fastKey(msg: Buffer, transport: 'udp' | 'tcp'): string | undefined {
  if (msg.length > FAST_KEY_MAX) return undefined;
  return transport + msg.toString('latin1', 2);
}

export interface DnsServerOptions {
  records: ClusterRecords;
  forwarder: Forwarder;
  /** Stub domains (canonical domain → servers), read at each query so ConfigMap changes apply at once. */
  stubDomains?: () => Map<string, Upstream[]>;
  /** Queries waiting on an upstream at most; beyond it UDP queries are dropped (default 2000). */
  maxPending?: number;
  /** TCP connections at most (default 256). */
  maxTcpConnections?: number;
  log?: Logger;
}

export interface Served { local: number; forwarded: number; dropped: number; malformed: number; truncated: number }

export class DnsServer {
  readonly stats: Served = { local: 0, forwarded: 0, dropped: 0, malformed: 0, truncated: 0 };
  private udp?: Socket;
  private tcp?: Server;
  private readonly conns = new Set<TcpSocket>();
  private pending = 0;
  private readonly maxPending: number;
  private readonly maxTcp: number;
  /** Encoded local answers by exact question (case kept: clients may randomise it), valid for one records generation. */
  private readonly answerCache = new Map<string, CachedAnswer>();

  constructor(private readonly o: DnsServerOptions) {
    this.maxPending = o.maxPending ?? 2000;
    this.maxTcp = o.maxTcpConnections ?? 256;
  }

  /** Binds UDP and TCP on host:port; fails (with both closed) when either cannot be bound. */
  async listen(host: string, port: number): Promise<{ port: number }> {
    // Port 0: the kernel picks a free UDP port, and the same TCP port may be taken (an outgoing
    // connection's local port, say): then try another, as a test on a busy machine once saw.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.listenOnce(host, port);
      } catch (err) {
        if (port !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
      }
    }
  }

  private async listenOnce(host: string, port: number): Promise<{ port: number }> {
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    const tcp = createServer((s) => this.onTcp(s));
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: host, port }, () => { udp.off('error', reject); resolve(); });
      });
      const bound = udp.address().port;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host, port: bound }, () => { tcp.off('error', reject); resolve(); });
      });
      udp.on('error', (err) => this.o.log?.warn({ err: err.message }, 'dns udp socket error'));
      tcp.on('error', (err) => this.o.log?.warn({ err: err.message }, 'dns tcp listener error'));
      udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo.address, rinfo.port));
      this.udp = udp;
      this.tcp = tcp;
      return { port: bound };
    } catch (err) {
      try { udp.close(); } catch { /* not bound */ }
      tcp.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }

  private onUdp(msg: Buffer, address: string, port: number): void {
    const out = this.handle(msg, 'udp');
    if (out === undefined) return;
    if (Buffer.isBuffer(out)) { this.udp?.send(out, port, address); return; }
    if (this.pending >= this.maxPending) { this.stats.dropped++; return; }
    this.pending++;
    out.then((buf) => { if (buf) this.udp?.send(buf, port, address); })
      .catch((err) => this.o.log?.warn({ err: (err as Error).message }, 'dns query failed'))
      .finally(() => { this.pending--; });
  }

  private onTcp(s: TcpSocket): void {
    if (this.conns.size >= this.maxTcp) { this.stats.dropped++; s.destroy(); return; }
    this.conns.add(s);
    s.setTimeout(TCP_IDLE_MS, () => s.destroy());
    s.on('close', () => this.conns.delete(s));
    s.on('error', () => s.destroy());
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    s.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        // Answers go back in order, one query at a time per connection (pipelined queries wait).
        chain = chain.then(async () => {
          const out = await this.handle(msg, 'tcp');
          if (!out || s.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          s.write(Buffer.concat([len, out]));
        }).catch(() => { s.destroy(); });
      }
    });
  }

  /**
   * One query's answer, or undefined to drop it. Synchronous (a Buffer) when answered from the records
   * or a fresh cache entry, so the hot path allocates no promise.
   */
  handle(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | Promise<Buffer | undefined> | undefined {
    // Whatever a packet makes the decoder or encoder do, it must not reach the event loop as an exception.
    try {
      const out = this.answer(msg, transport);
      return out instanceof Promise ? out.catch(() => { this.stats.malformed++; return undefined; }) : out;
    } catch {
      this.stats.malformed++;
      return undefined;
    }
  }

  private answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | Promise<Buffer | undefined> | undefined {
    if (msg.length < 12 || (msg[2]! & 0x80)) { this.stats.malformed++; return undefined; }   // short, or a response
    // Fast path: a query whose exact bytes were answered before gets a copy with the id patched, no
    // decoding (most of the cost per query, and much more so under the agent's --jitless).
    const fast = fastKey(msg, transport);
    if (fast !== undefined) {
      const hit = this.answerCache.get(fast);
      if (hit && (hit.gen === this.o.records.generation || hit.until > Date.now())) {
        if (hit.gen >= 0) this.stats.local++; else this.stats.forwarded++;
        const out = Buffer.from(hit.buf);
        out[0] = msg[0]!;
        out[1] = msg[1]!;
        return out;
      }
    }
    if (!plausibleMessage(msg)) { this.stats.malformed++; return undefined; }
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      this.stats.malformed++;
      return undefined;
    }
    const opcode = (msg[2]! >> 3) & 0xf;
    const rd = (msg[2]! & 0x01) !== 0;
    const opt = (q.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    const limit = transport === 'tcp' ? 65535 : opt ? Math.min(MAX_UDP, Math.max(512, opt.udpPayloadSize ?? 512)) : 512;
    const question = q.questions?.[0];
    if (opcode !== OPCODE_QUERY) return this.reply(q.id ?? 0, q.questions ?? [], { rcode: 'NOTIMP' }, rd, !!opt, limit);
    if (!question || q.questions!.length !== 1 || typeof question.name !== 'string') return this.reply(q.id ?? 0, [], { rcode: 'FORMERR' }, rd, !!opt, limit);
    if (question.class !== 'IN') return this.reply(q.id ?? 0, [question], { rcode: 'REFUSED' }, rd, !!opt, limit);

    let local: LocalAnswer | undefined;
    try {
      local = this.o.records.answer(question.name, String(question.type));
    } catch (err) {
      this.o.log?.warn({ err: (err as Error).message, name: question.name }, 'dns record lookup failed');
      return this.reply(q.id ?? 0, [question], { rcode: 'SERVFAIL' }, rd, !!opt, limit);
    }
    if (local && !local.chase) {
      this.stats.local++;
      const out = this.reply(q.id ?? 0, [question], local, rd, !!opt, limit, true);
      if (fast !== undefined) this.remember(fast, { gen: this.o.records.generation, until: 0, buf: out });
      return out;
    }
    this.stats.forwarded++;
    if (local?.chase) {
      // ExternalName: our CNAME, then the target's records from upstream.
      const target = local.chase;
      return this.forward(target, String(question.type), q.flag_cd).then((m) => this.reply(q.id ?? 0, [question], {
        rcode: m.rcode === 'NOERROR' || m.rcode === 'NXDOMAIN' ? 'NOERROR' : m.rcode,
        answers: [...local.answers, ...m.answers], authorities: [], additionals: [],
      }, rd, !!opt, limit, true));
    }
    const cached = this.stubFor(question.name) ? undefined : this.o.forwarder.cached({ name: question.name, type: String(question.type) });
    if (cached) {
      const out = this.reply(q.id ?? 0, [question], cached, rd, !!opt, limit);
      // TTLs count down in whole seconds: the same bytes are right until the second ends.
      if (fast !== undefined) this.remember(fast, { gen: -1, until: (Math.floor(Date.now() / 1000) + 1) * 1000, buf: out });
      return out;
    }
    return this.forward(question.name, String(question.type), q.flag_cd).then((m) => this.reply(q.id ?? 0, [question], m, rd, !!opt, limit));
  }

  private remember(key: string, e: CachedAnswer): void {
    if (this.answerCache.size >= ANSWER_CACHE_MAX) this.answerCache.clear();
    this.answerCache.set(key, e);
  }

  private stubFor(name: string): Upstream[] | undefined {
    const stubs = this.o.stubDomains?.();
    if (!stubs?.size) return undefined;
    let n = canonicalName(name);
    for (;;) {
      const s = stubs.get(n);
      if (s) return s;
      const dot = n.indexOf('.');
      if (dot < 0) return undefined;
      n = n.slice(dot + 1);
    }
  }

  private forward(name: string, type: string, cd: boolean): Promise<CachedMessage> {
    return this.o.forwarder.resolve({ name, type, checkingDisabled: cd }, this.stubFor(name));
  }

  private reply(id: number, questions: Question[], m: Partial<CachedMessage> & { rcode: string }, rd: boolean, edns: boolean, limit: number, authoritative = false): Buffer {
    const rcode = RCODES[m.rcode] ?? RCODES.SERVFAIL!;
    const flags = (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | (rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE | rcode;
    const optRecord = edns ? [{ type: 'OPT', name: '.', udpPayloadSize: OUR_UDP_SIZE, flags: 0 } as unknown as Answer] : [];
    const full = {
      type: 'response' as const, id, flags, questions,
      answers: m.answers ?? [], authorities: m.authorities ?? [], additionals: [...(m.additionals ?? []), ...optRecord],
    };
    const out = dnsPacket.encode(full);
    if (out.length <= limit) return out;
    this.stats.truncated++;
    return dnsPacket.encode({ ...full, flags: flags | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [], additionals: optRecord });
  }
}
