// A minimal DNS client for tests: one question over UDP or TCP, the decoded answer (or a timeout).
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as dnsPacket from 'dns-packet';

export interface AskOptions { transport?: 'udp' | 'tcp'; edns?: number; timeoutMs?: number; id?: number }

export function ask(host: string, port: number, name: string, type = 'A', o: AskOptions = {}): Promise<dnsPacket.DecodedPacket & { rcode: string }> {
  const query = dnsPacket.encode({
    type: 'query', id: o.id ?? 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as any }],
    ...(o.edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: o.edns, flags: 0 } as any] } : {}),
  });
  const timeoutMs = o.timeoutMs ?? 3000;
  if (o.transport === 'tcp') {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      let buf = Buffer.alloc(0);
      const t = setTimeout(() => { s.destroy(); reject(new Error(`tcp ${name}: timeout`)); }, timeoutMs);
      s.on('error', (e) => { clearTimeout(t); reject(e); });
      s.on('connect', () => { const l = Buffer.alloc(2); l.writeUInt16BE(query.length); s.write(Buffer.concat([l, query])); });
      s.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(t);
          s.destroy();
          resolve(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as any);
        }
      });
    });
  }
  return new Promise((resolve, reject) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => { s.close(); reject(new Error(`udp ${name}: timeout`)); }, timeoutMs);
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(dnsPacket.decode(m) as any); });
    s.send(query, port, host);
  });
}
