// A test double for an upstream resolver (only the upstream: the code under test is real): UDP and
// TCP on 127.0.0.1, answering from a table, truncating over UDP when told to, staying silent for names
// that should time out. Counts what it was asked, so tests can tell cache hits from upstream trips.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import * as dnsPacket from 'dns-packet';

export interface StubReply {
  rcode?: string;
  answers?: dnsPacket.Answer[];
  authorities?: dnsPacket.Answer[];
  /** Over UDP answer with TC set and no records (the client must retry over TCP). */
  truncateUdp?: boolean;
  /** Never answer. */
  silent?: boolean;
}

const RC: Record<string, number> = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

export class StubUpstream {
  udp!: Socket;
  tcp!: Server;
  port = 0;
  readonly asked: { name: string; type: string; transport: 'udp' | 'tcp' }[] = [];

  constructor(private readonly table: (name: string, type: string) => StubReply) {}

  async start(): Promise<this> {
    this.udp = createSocket('udp4');
    await new Promise<void>((r) => this.udp.bind(0, '127.0.0.1', () => r()));
    this.port = this.udp.address().port;
    this.udp.on('message', (msg, rinfo) => {
      const out = this.answer(msg, 'udp');
      if (out) this.udp.send(out, rinfo.port, rinfo.address);
    });
    this.tcp = createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('error', () => s.destroy());
      s.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        const out = this.answer(buf.subarray(2, 2 + buf.readUInt16BE(0)), 'tcp');
        if (!out) return;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        s.end(Buffer.concat([len, out]));
      });
    });
    await new Promise<void>((r) => this.tcp.listen(this.port, '127.0.0.1', () => r()));
    return this;
  }

  private answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    let q: dnsPacket.DecodedPacket;
    try { q = dnsPacket.decode(msg); } catch { return undefined; }
    const question = q.questions![0]!;
    this.asked.push({ name: question.name, type: question.type, transport });
    const r = this.table(question.name, question.type);
    if (r.silent) return undefined;
    const tc = transport === 'udp' && r.truncateUdp;
    return dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0) | (RC[r.rcode ?? 'NOERROR'] ?? 0),
      questions: [question], answers: tc ? [] : r.answers ?? [], authorities: tc ? [] : r.authorities ?? [],
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.udp.close(() => r()));
    await new Promise<void>((r) => this.tcp.close(() => r()));
  }
}
