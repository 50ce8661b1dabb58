// cidrContains: the one "is this address in that CIDR" rule (the proxy's --nodeport-addresses uses it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, ipToNumber, numberToIp, parseCidr } from '../../src/api/cidr.js';

test('cidrContains: inside, outside, edges, other family, host bits in the CIDR', () => {
  const c = parseCidr('10.1.2.3/16')!;
  assert.ok(cidrContains(c, '10.1.0.0'));
  assert.ok(cidrContains(c, '10.1.255.255'));
  assert.ok(!cidrContains(c, '10.2.0.1'));
  assert.ok(!cidrContains(c, 'fd00::1'));
  assert.ok(!cidrContains(c, 'not-an-ip'));
  assert.ok(cidrContains(parseCidr('0.0.0.0/0')!, '192.0.2.9'));
  assert.ok(cidrContains(parseCidr('fd00::/64')!, 'fd00::abcd'));
  assert.ok(!cidrContains(parseCidr('fd00::/64')!, 'fd00:0:0:1::1'));
});

test('ipToNumber / numberToIp: dotted quads only, round trip, the top of the range', () => {
  assert.equal(ipToNumber('10.43.0.1'), (10 << 24) + (43 << 16) + 1);
  assert.equal(ipToNumber('255.255.255.255'), 2 ** 32 - 1);
  for (const bad of ['10.43.0.256', '10.43.0', ' 10.43.0.1', '::1', '10.43.0.1/32', '']) assert.equal(ipToNumber(bad), undefined, bad);
  for (const ip of ['0.0.0.0', '10.43.0.10', '192.168.255.254', '255.255.255.255']) assert.equal(numberToIp(ipToNumber(ip)!), ip);
});
