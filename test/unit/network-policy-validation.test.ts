// NetworkPolicy validation as Kubernetes does it: CIDRs, excepts, peers, ports and ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateNetworkPolicy } from '../../src/api/validation/network-policy.js';
import { isStrictSubset, parseCidr, formatCidr } from '../../src/api/cidr.js';

const np = (spec: object) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'd' }, spec }) as any;
const causes = (spec: object) => validateNetworkPolicy(np(spec)).map((c) => `${c.field}: ${c.message}`);
const from = (peer: object) => ({ podSelector: {}, ingress: [{ from: [peer] }] });

test('a valid policy has no causes', () => {
  assert.deepEqual(causes({
    podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }, { namespaceSelector: {}, podSelector: {} }], ports: [{ port: 80, endPort: 90 }, { port: 'http', protocol: 'SCTP' }] }],
    egress: [{ to: [{ ipBlock: { cidr: '2001:db8::/64' } }] }],
  }), []);
});

test('ipBlock: invalid CIDR, except outside or equal to cidr, missing cidr', () => {
  assert.deepEqual(causes(from({ ipBlock: { cidr: '10.0.0.300/8' } })), ['spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.300/8": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']);
  assert.deepEqual(causes(from({ ipBlock: { cidr: '10.0.0.0/33' } })).length, 1);
  assert.deepEqual(causes(from({ ipBlock: { cidr: '10.0.0.0' } })).length, 1);
  assert.deepEqual(causes(from({ ipBlock: { cidr: '10.0.0.0/24', except: ['192.168.0.0/24', '10.0.0.0/24', 'nope'] } })), [
    'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/24": must be a strict subset of `cidr`',
    'spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: "10.0.0.0/24": must be a strict subset of `cidr`',
    'spec.ingress[0].from[0].ipBlock.except[2]: Invalid value: "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
  ]);
  assert.deepEqual(causes(from({ ipBlock: {} })), ['spec.ingress[0].from[0].ipBlock.cidr: Required value']);
});

test('peers: at least one kind, ipBlock alone', () => {
  assert.deepEqual(causes(from({})), ['spec.ingress[0].from[0]: Required value: must specify a peer']);
  assert.deepEqual(causes(from({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} })), ['spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer']);
  assert.deepEqual(causes({ podSelector: {}, egress: [{ to: [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }] }] }).length, 1);
});

test('ports: protocol, number, name, endPort', () => {
  const port = (p: object) => causes({ podSelector: {}, ingress: [{ ports: [p] }] });
  assert.deepEqual(port({ protocol: 'ICMP', port: 1 }), ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"']);
  assert.deepEqual(port({ port: 70000 }), ['spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive']);
  assert.deepEqual(port({ port: 100, endPort: 90 }), ['spec.ingress[0].ports[0].endPort: Invalid value: 100: must be greater than or equal to `port`']);
  assert.deepEqual(port({ port: 'http', endPort: 90 }), ['spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric']);
  assert.deepEqual(port({ endPort: 90 }), ['spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified']);
  assert.equal(port({ port: 'Not_A_Name' }).length, 1);
});

test('CIDR helpers: sloppy host bits, strict subsets, IPv6', () => {
  assert.equal(formatCidr(parseCidr('192.168.7.9/24')!), '192.168.7.0/24');
  assert.ok(isStrictSubset(parseCidr('10.1.0.0/16')!, parseCidr('10.0.0.0/8')!));
  assert.ok(!isStrictSubset(parseCidr('10.0.0.0/8')!, parseCidr('10.0.0.0/8')!));
  assert.ok(isStrictSubset(parseCidr('2001:db8::/80')!, parseCidr('2001:db8::/64')!));
  assert.ok(!isStrictSubset(parseCidr('2001:db9::/80')!, parseCidr('2001:db8::/64')!));
  assert.equal(parseCidr('::ffff:1.2.3.4/128')?.family, 6);
});
