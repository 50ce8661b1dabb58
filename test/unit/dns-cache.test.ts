// The forwarder's cache: positive answers for their smallest TTL (counted down), denials for the SOA
// minimum, SERVFAIL and SOA-less denials not at all, a bound with least-recently-used eviction, and
// stale answers (TTL 30) only on request after expiry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answer } from 'dns-packet';
import { DnsCache, STALE_TTL, type CachedMessage } from '../../src/agent/dns/cache.js';

const a = (name: string, ttl: number, ip = '192.0.2.1'): Answer => ({ name, type: 'A', ttl, data: ip });
const soa = (ttl: number, minimum: number): Answer => ({ name: 'example.', type: 'SOA', ttl, data: { mname: 'ns.', rname: 'h.', minimum } });
const msg = (m: Partial<CachedMessage>): CachedMessage => ({ rcode: 'NOERROR', answers: [], authorities: [], additionals: [], ...m });

test('positive answers live for their smallest TTL, counted down', () => {
  let now = 0;
  const c = new DnsCache({ now: () => now });
  const k = DnsCache.key('Example.COM.', 'A');
  assert.equal(k, DnsCache.key('example.com', 'A'));
  c.set(k, msg({ answers: [a('example.com', 60), a('example.com', 30, '192.0.2.2')] }));
  now = 10_000;
  assert.deepEqual(c.get(k)!.answers.map((x: any) => x.ttl), [50, 20]);
  now = 29_999;
  assert.ok(c.get(k));
  now = 30_000;
  assert.equal(c.get(k), undefined, 'expired at the smallest TTL');
  assert.deepEqual(c.getStale(k)!.answers.map((x: any) => x.ttl), [STALE_TTL, STALE_TTL], 'but servable stale');
  now = 30_000 + 3600_000;
  assert.equal(c.getStale(k), undefined, 'not after the stale window');
  assert.equal(c.size, 0);
});

test('denials for min(SOA TTL, SOA minimum); no SOA or SERVFAIL: not cached; caps and floors', () => {
  let now = 0;
  const c = new DnsCache({ now: () => now, maxTtl: 100, minTtl: 5 });
  c.set('nx', msg({ rcode: 'NXDOMAIN', authorities: [soa(300, 20)] }));
  c.set('nodata', msg({ authorities: [soa(10, 900)] }));
  c.set('nosoa', msg({ rcode: 'NXDOMAIN' }));
  c.set('fail', msg({ rcode: 'SERVFAIL' }));
  c.set('long', msg({ answers: [a('x', 86400)] }));
  c.set('zero', msg({ answers: [a('x', 0)] }));
  assert.equal(c.size, 4);
  now = 9_000;
  assert.ok(c.get('nx') && c.get('nodata') && c.get('zero') === undefined);
  now = 4_000;
  assert.ok(c.get('zero'), 'TTL 0 answers are floored at 5 s');
  now = 10_000;
  assert.equal(c.get('nodata'), undefined);
  assert.ok(c.get('nx'));
  now = 20_000;
  assert.equal(c.get('nx'), undefined);
  now = 99_000;
  assert.ok(c.get('long'));
  now = 100_000;
  assert.equal(c.get('long'), undefined, 'capped at maxTtl');
});

test('bounded: the least recently used entry goes first', () => {
  const c = new DnsCache({ maxEntries: 3 });
  for (const k of ['a', 'b', 'c']) c.set(k, msg({ answers: [a(k, 60)] }));
  assert.ok(c.get('a'));                        // a is now the most recent
  c.set('d', msg({ answers: [a('d', 60)] }));
  assert.equal(c.size, 3);
  assert.equal(c.get('b'), undefined, 'b was the least recently used');
  assert.ok(c.get('a') && c.get('c') && c.get('d'));
  for (let i = 0; i < 1000; i++) c.set(`k${i}`, msg({ answers: [a('k', 60)] }));
  assert.equal(c.size, 3);
});
