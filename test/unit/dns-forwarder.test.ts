// The forwarder against a stub upstream (a test double for the upstream resolver only): answers and
// their caching, TC → TCP retry, failover from a silent or SERVFAILing upstream to the next, sharing
// of identical questions in flight, stale answers when every upstream is gone, SERVFAIL at once with
// none, and how the upstream list is read from resolv.conf (systemd-resolved's stub skipped).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Answer } from 'dns-packet';
import { Forwarder, readUpstreams } from '../../src/agent/dns/forwarder.js';
import { DnsCache } from '../../src/agent/dns/cache.js';
import { StubUpstream } from '../helpers/dns-stub-upstream.js';

const A = (name: string, ip: string, ttl = 60): Answer => ({ name, type: 'A', ttl, data: ip });
const big = Array.from({ length: 40 }, (_, i) => A('big.test', `192.0.2.${i + 1}`));

const good = await new StubUpstream((name) => {
  if (name === 'a.test') return { answers: [A(name, '192.0.2.7')] };
  if (name === 'big.test') return { answers: big, truncateUdp: true };
  if (name === 'nx.test') return { rcode: 'NXDOMAIN', authorities: [{ name: 'test', type: 'SOA', ttl: 60, data: { mname: 'ns.test', rname: 'h.test', minimum: 30 } }] };
  if (name === 'slow.test') return { silent: true };
  return { rcode: 'SERVFAIL' };
}).start();
const silent = await new StubUpstream(() => ({ silent: true })).start();
const failing = await new StubUpstream(() => ({ rcode: 'SERVFAIL' })).start();
const dir = mkdtempSync(join(tmpdir(), 'skiff-dns-fwd-'));
after(async () => {
  await Promise.all([good.stop(), silent.stop(), failing.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const up = (s: StubUpstream) => ({ host: '127.0.0.1', port: s.port });

test('an answer is fetched once, then served from the cache', async () => {
  const f = new Forwarder({ upstreams: [up(good)] });
  const before = good.asked.length;
  const m = await f.resolve({ name: 'a.test', type: 'A' });
  assert.equal(m.rcode, 'NOERROR');
  assert.deepEqual(m.answers.map((x: any) => x.data), ['192.0.2.7']);
  await f.resolve({ name: 'A.TEST', type: 'A' });
  assert.ok(f.cached({ name: 'a.test', type: 'A' }));
  assert.equal(good.asked.length - before, 1);
  const nx = await f.resolve({ name: 'nx.test', type: 'A' });
  assert.equal(nx.rcode, 'NXDOMAIN');
  await f.resolve({ name: 'nx.test', type: 'A' });
  assert.equal(good.asked.filter((q) => q.name === 'nx.test').length, 1, 'the denial was cached');
});

test('a truncated UDP answer is asked again over TCP', async () => {
  const f = new Forwarder({ upstreams: [up(good)] });
  const m = await f.resolve({ name: 'big.test', type: 'A' });
  assert.equal(m.answers.length, 40);
  assert.equal(f.stats.tcpRetries, 1);
  assert.deepEqual(good.asked.filter((q) => q.name === 'big.test').map((q) => q.transport), ['udp', 'tcp']);
});

test('failover: a silent upstream times out, a SERVFAILing one is skipped, the next answers', async () => {
  const f = new Forwarder({ upstreams: [up(silent), up(failing), up(good)], timeoutMs: 300 });
  const m = await f.resolve({ name: 'a.test', type: 'A' });
  assert.equal(m.rcode, 'NOERROR');
  assert.equal(f.stats.upstreamErrors, 2);
  // The upstream that answered is asked first next time.
  const n = await f.resolve({ name: 'nx.test', type: 'A' });
  assert.equal(n.rcode, 'NXDOMAIN');
  assert.equal(f.stats.upstreamErrors, 2);
  const all = new Forwarder({ upstreams: [up(silent), up(failing)], timeoutMs: 200 });
  assert.equal((await all.resolve({ name: 'a.test', type: 'A' })).rcode, 'SERVFAIL');
});

test('identical questions in flight share one upstream query', async () => {
  const f = new Forwarder({ upstreams: [up(good)] });
  const before = good.asked.filter((q) => q.name === 'a.test').length;
  const all = await Promise.all(Array.from({ length: 20 }, () => f.resolve({ name: 'a.test', type: 'A' })));
  assert.ok(all.every((m) => m.answers.length === 1));
  assert.equal(good.asked.filter((q) => q.name === 'a.test').length - before, 1);
});

test('upstreams gone: stale answers from the cache; no upstream at all: SERVFAIL at once', async () => {
  let now = Date.now();
  const cache = new DnsCache({ now: () => now });
  const f = new Forwarder({ upstreams: [up(good)], cache, timeoutMs: 200 });
  await f.resolve({ name: 'a.test', type: 'A' });
  f.setUpstreams([up(silent)]);
  now += 120_000;                                              // past the 60 s TTL
  const stale = await f.resolve({ name: 'a.test', type: 'A' });
  assert.deepEqual(stale.answers.map((x: any) => [x.data, x.ttl]), [['192.0.2.7', 30]]);
  const none = new Forwarder({ upstreams: [] });
  assert.equal((await none.resolve({ name: 'a.test', type: 'A' })).rcode, 'SERVFAIL');
  assert.equal(none.stats.upstreamErrors, 0, 'nothing was tried');
});

test('upstreams from resolv.conf: nameservers in order, our own addresses left out', () => {
  const f = join(dir, 'resolv.conf');
  writeFileSync(f, '# c\nnameserver 192.0.2.53\nnameserver 10.43.0.10\nnameserver fe80::1%eth0\nsearch lan\n');
  assert.deepEqual(readUpstreams(f, ['10.43.0.10']), [{ host: '192.0.2.53', port: 53 }, { host: 'fe80::1', port: 53 }]);
  assert.deepEqual(readUpstreams(join(dir, 'missing')), []);
});
