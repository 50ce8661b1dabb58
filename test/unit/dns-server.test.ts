// The DNS server on loopback (real UDP and TCP sockets), records and forwarder real, the upstream a
// stub (test double): cluster names answered authoritatively, others forwarded and cached, stub
// domains, ExternalName chased upstream, UDP truncation (TC) unless EDNS allows the size, the full
// answer over TCP, 10,000 malformed packets dropped without harm, and SERVFAIL with no upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import { ClusterRecords } from '../../src/agent/dns/records.js';
import { serviceEntry } from '../../src/agent/dns/service-entry.js';
import { Forwarder } from '../../src/agent/dns/forwarder.js';
import { DnsServer, fastKey } from '../../src/agent/dns/server.js';
import { plausibleMessage } from '../../src/agent/dns/wire.js';
import { StubUpstream } from '../helpers/dns-stub-upstream.js';
import { ask } from '../helpers/dns-client.js';

const records = new ClusterRecords({ clusterDomain: 'cluster.local', clusterDns: '10.43.0.10' });
records.setNamespaces(['team']);
records.setService(serviceEntry({ metadata: { name: 'web', namespace: 'team' }, spec: { clusterIP: '10.43.0.20', ports: [{ name: 'http', port: 80 }] } }, []));
records.setService(serviceEntry({ metadata: { name: 'ext', namespace: 'team' }, spec: { type: 'ExternalName', externalName: 'www.example.test' } }, []));
// 25 endpoints: about 1.1 KB of A records (dns-packet does not compress names): over 512, under 1232.
records.setService(serviceEntry({ metadata: { name: 'many', namespace: 'team' }, spec: { clusterIP: 'None' } }, [{
  metadata: { name: 'many-1', namespace: 'team', labels: { 'kubernetes.io/service-name': 'many' } }, addressType: 'IPv4',
  endpoints: Array.from({ length: 25 }, (_, i) => ({ addresses: [`10.42.3.${i + 1}`] })), ports: [],
}]));

let upstream: StubUpstream;
let stubDomain: StubUpstream;
let server: DnsServer;
let port = 0;

before(async () => {
  upstream = await new StubUpstream((name) => (/example\.test$/.test(name)
    ? { answers: [{ name, type: 'A', ttl: 300, data: '192.0.2.80' }] }
    : { rcode: 'NXDOMAIN', authorities: [{ name: 'test', type: 'SOA', ttl: 60, data: { mname: 'ns.test', rname: 'h.test', minimum: 60 } }] })).start();
  stubDomain = await new StubUpstream((name) => ({ answers: [{ name, type: 'A', ttl: 60, data: '198.51.100.1' }] })).start();
  const forwarder = new Forwarder({ upstreams: [{ host: '127.0.0.1', port: upstream.port }], timeoutMs: 500 });
  server = new DnsServer({ records, forwarder, stubDomains: () => new Map([['corp.internal', [{ host: '127.0.0.1', port: stubDomain.port }]]]) });
  port = (await server.listen('127.0.0.1', 0)).port;
});
after(async () => {
  await server.close();
  await upstream.stop();
  await stubDomain.stop();
});

test('cluster names: authoritative answers over UDP and TCP; external names forwarded, then cached', async () => {
  const a = await ask('127.0.0.1', port, 'web.team.svc.cluster.local');
  assert.equal(a.rcode, 'NOERROR');
  assert.equal(a.flag_aa, true);
  assert.deepEqual(a.answers!.map((x: any) => x.data), ['10.43.0.20']);
  assert.equal(a.id, 4242);
  const t = await ask('127.0.0.1', port, 'web.team.svc.cluster.local', 'A', { transport: 'tcp' });
  assert.deepEqual(t.answers!.map((x: any) => x.data), ['10.43.0.20']);
  const nx = await ask('127.0.0.1', port, 'nope.team.svc.cluster.local');
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.equal(nx.authorities![0]!.type, 'SOA');

  const e = await ask('127.0.0.1', port, 'www.example.test');
  assert.deepEqual(e.answers!.map((x: any) => x.data), ['192.0.2.80']);
  assert.equal(e.flag_aa, false);
  const asked = upstream.asked.length;
  const again = await ask('127.0.0.1', port, 'www.example.test', 'A', { id: 7 });
  assert.equal(again.id, 7);
  assert.deepEqual(again.answers!.map((x: any) => x.data), ['192.0.2.80']);
  assert.equal(upstream.asked.length, asked, 'served from the cache');
});

test('ExternalName is a CNAME followed by the target\'s upstream records; stub domains go to their servers', async () => {
  const e = await ask('127.0.0.1', port, 'ext.team.svc.cluster.local');
  assert.deepEqual(e.answers!.map((x: any) => [x.type, x.data]), [['CNAME', 'www.example.test'], ['A', '192.0.2.80']]);
  const s = await ask('127.0.0.1', port, 'host.corp.internal');
  assert.deepEqual(s.answers!.map((x: any) => x.data), ['198.51.100.1']);
  assert.equal(stubDomain.asked.length, 1);
  assert.equal(upstream.asked.some((q) => q.name.endsWith('corp.internal')), false);
});

test('UDP answers over 512 bytes are truncated unless EDNS allows them; TCP carries them whole', async () => {
  const plain = await ask('127.0.0.1', port, 'many.team.svc.cluster.local');
  assert.equal(plain.flag_tc, true);
  assert.equal(plain.answers!.length, 0);
  const edns = await ask('127.0.0.1', port, 'many.team.svc.cluster.local', 'A', { edns: 4096 });
  assert.equal(edns.flag_tc, false);
  assert.equal(edns.answers!.length, 25);
  const tcp = await ask('127.0.0.1', port, 'many.team.svc.cluster.local', 'A', { transport: 'tcp' });
  assert.equal(tcp.answers!.length, 25);
});

/** 10,000 bad packets of five kinds (deterministic per index). */
function malformed(i: number, valid: Buffer): Buffer {
  switch (i % 5) {
    case 0: return randomBytes(1 + (i % 300));                                                  // noise
    case 1: return valid.subarray(0, i % valid.length);                                          // cut short
    case 2: { const p = Buffer.from(valid); p[12 + (i % (valid.length - 12))] = i & 0xff; return p; }  // a flipped byte
    case 3: { const p = Buffer.from(valid); p[2] = 0x80; return p; }                             // a response: never answered
    default: { const p = Buffer.from(valid); p.writeUInt16BE(0xffff, 4); return p; }             // lies about its counts
  }
}

test('10,000 malformed packets are dropped (or refused) without harm, through the handler and over real sockets', async () => {
  const valid = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'web.team.svc.cluster.local', type: 'A' }] });
  // Through the handler itself: every packet accounted for, nothing thrown, every reply well-formed.
  const before = server.stats.malformed;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 10_000; i++) {
    const out = server.handle(malformed(i, valid), 'udp');
    if (out instanceof Promise) pending.push(out.then((b) => b && dnsPacket.decode(b)));
    else if (out) assert.doesNotThrow(() => dnsPacket.decode(out));
  }
  await Promise.all(pending);
  assert.ok(server.stats.malformed - before >= 4000, `cut-short packets and responses are all dropped: ${server.stats.malformed - before}`);

  // Over UDP (the kernel may drop some on a busy machine; what arrives must not hurt) and junk over TCP.
  const sock = createSocket('udp4');
  const replies: Buffer[] = [];
  sock.on('message', (m) => replies.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (let i = 0; i < 10_000; i++) {
    sock.send(malformed(i, valid), port, '127.0.0.1');
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise<void>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => { s.end(Buffer.concat([Buffer.from([0x01, 0x00]), randomBytes(300)])); });
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
  await new Promise((r) => setTimeout(r, 200));
  sock.close();
  for (const r of replies) assert.doesNotThrow(() => dnsPacket.decode(r), 'every reply sent is a well-formed message');
  const a = await ask('127.0.0.1', port, 'web.team.svc.cluster.local');
  assert.deepEqual(a.answers!.map((x: any) => x.data), ['10.43.0.20']);
});

test('no upstream at all: cluster names still answer, other names SERVFAIL', async () => {
  const s = new DnsServer({ records, forwarder: new Forwarder({ upstreams: [] }) });
  const p = (await s.listen('127.0.0.1', 0)).port;
  try {
    assert.deepEqual((await ask('127.0.0.1', p, 'web.team.svc.cluster.local')).answers!.map((x: any) => x.data), ['10.43.0.20']);
    assert.equal((await ask('127.0.0.1', p, 'www.example.test')).rcode, 'SERVFAIL');
  } finally {
    await s.close();
  }
});

test('the fast path: the key is every byte after the id; answers echo the question\'s letter case', async () => {
  const q = (o: object) => dnsPacket.encode({ type: 'query', id: 9, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'web.team.svc.cluster.local', type: 'A' }], ...o });
  assert.equal(fastKey(q({}), 'udp'), fastKey(q({ id: 10 }), 'udp'), 'the id is not part of it');
  assert.notEqual(fastKey(q({}), 'udp'), fastKey(q({}), 'tcp'));
  assert.notEqual(fastKey(q({}), 'udp'), fastKey(q({ flags: 0 }), 'udp'), 'RD is part of the answer');
  assert.notEqual(fastKey(q({}), 'udp'), fastKey(q({ additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0 }] }), 'udp'));
  assert.equal(fastKey(Buffer.alloc(400), 'udp'), undefined);
  const lower = await ask('127.0.0.1', port, 'web.team.svc.cluster.local', 'A', { id: 1 });
  const mixed = await ask('127.0.0.1', port, 'WeB.TeAm.svc.cluster.local', 'A', { id: 2 });
  const again = await ask('127.0.0.1', port, 'WeB.TeAm.svc.cluster.local', 'A', { id: 3 });
  assert.equal(lower.questions![0]!.name, 'web.team.svc.cluster.local');
  assert.equal(mixed.questions![0]!.name, 'WeB.TeAm.svc.cluster.local');
  assert.equal(again.answers![0]!.name, 'WeB.TeAm.svc.cluster.local');
  assert.deepEqual([lower.id, mixed.id, again.id], [1, 2, 3]);
});

test('header counts must fit the packet before it is decoded (dns-packet sizes arrays from them)', () => {
  const valid = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'a.b', type: 'A' }] });
  assert.equal(plausibleMessage(valid), true);
  const lying = Buffer.from(valid);
  lying.writeUInt16BE(0xffff, 10);
  assert.equal(plausibleMessage(lying), false);
  assert.equal(plausibleMessage(Buffer.alloc(11)), false);
  assert.equal(plausibleMessage(Buffer.alloc(12)), true, 'an empty message is structurally fine (then FORMERR)');
});
