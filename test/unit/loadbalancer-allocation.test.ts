// Address pools and allocation (MetalLB's rules), ServiceLB's node choice (k3s's), and which
// addresses a node may announce: pure functions, no cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  collectPools, parseAddressEntry, poolSize, poolsFromLegacyConfig, poolFromObject, ipToNumber, type AddressPool,
} from '../../src/api/address-pools.js';
import { allocate, holderOf, servedByPools, type Usage } from '../../src/controllers/loadbalancer/allocator.js';
import { serviceLbAddresses, ENABLE_LB_LABEL, LB_POOL_LABEL } from '../../src/controllers/loadbalancer/servicelb.js';
import { desiredAddresses } from '../../src/agent/network/l2/desired.js';

const LEGACY = `address-pools:
- name: default
  protocol: layer2
  addresses:
  - 10.10.10.50-10.10.10.99
`;

function svc(name: string, opts: { ip?: string; ann?: Record<string, string>; ports?: [number, string][]; local?: boolean; ingress?: string[]; labels?: Record<string, string>; ns?: string; created?: string; selector?: Record<string, string> } = {}): any {
  return {
    metadata: { name, namespace: opts.ns ?? 'default', annotations: opts.ann ?? {}, labels: opts.labels ?? {}, creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z' },
    spec: {
      type: 'LoadBalancer', ...(opts.ip ? { loadBalancerIP: opts.ip } : {}),
      ports: (opts.ports ?? [[80, 'TCP']]).map(([port, protocol]) => ({ port, protocol })),
      externalTrafficPolicy: opts.local ? 'Local' : 'Cluster', selector: opts.selector ?? { app: name },
    },
    status: opts.ingress ? { loadBalancer: { ingress: opts.ingress.map((ip) => ({ ip })) } } : {},
  };
}

function usageOf(...entries: [string, any][]): Usage {
  const u: Usage = new Map();
  for (const [ip, s] of entries) {
    const n = ipToNumber(ip)!;
    u.set(n, [...(u.get(n) ?? []), holderOf(s)]);
  }
  return u;
}

const legacyPools = () => poolsFromLegacyConfig(LEGACY).pools;
const alloc = (s: any, pools: AddressPool[] = legacyPools(), usage: Usage = new Map()) => allocate({ svc: s, pools, usage, namespaceLabels: {} });

test('address entries: ranges, CIDRs, single addresses; IPv6 skipped; malformed reported', () => {
  assert.deepEqual(parseAddressEntry('10.0.0.50-10.0.0.99'), { first: ipToNumber('10.0.0.50'), last: ipToNumber('10.0.0.99') });
  assert.deepEqual(parseAddressEntry('10.0.0.7/24'), { first: ipToNumber('10.0.0.0'), last: ipToNumber('10.0.0.255') });
  assert.deepEqual(parseAddressEntry('10.0.0.7'), { first: ipToNumber('10.0.0.7'), last: ipToNumber('10.0.0.7') });
  assert.equal(parseAddressEntry('fd00::/64'), undefined);
  assert.match(String(parseAddressEntry('10.0.0.9-10.0.0.1')), /first address after the last/);
  assert.match(String(parseAddressEntry('10.0.0.0/33')), /invalid CIDR/);
  assert.match(String(parseAddressEntry('bogus')), /invalid address/);
});

test('pool sizes count without enumerating, avoidBuggyIPs leaves out .0 and .255', () => {
  const p = poolFromObject({ metadata: { name: 'p' }, spec: { addresses: ['10.0.0.0/23'], avoidBuggyIPs: true } }).pools[0]!;
  assert.equal(poolSize(p), 512 - 4);
  assert.equal(poolSize({ ...p, avoidBuggyIps: false }), 512);
  const big = poolFromObject({ metadata: { name: 'b' }, spec: { addresses: ['10.0.0.0/8'] } }).pools[0]!;
  assert.equal(poolSize(big), 2 ** 24);
});

test('legacy ConfigMap: layer2 pools read, BGP and bad entries reported', () => {
  const r = poolsFromLegacyConfig(`${LEGACY}- name: b\n  protocol: bgp\n  addresses: [10.1.0.0/24]\n- name: bad\n  protocol: layer2\n  addresses: [10.2.0.300]\n`);
  assert.deepEqual(r.pools.map((p) => p.name), ['default']);
  assert.equal(r.errors.length, 2);
  assert.match(poolsFromLegacyConfig('{').errors[0]!, /not YAML/);
});

test('overlapping pools: the later one is left out and reported', () => {
  const r = collectPools([
    { metadata: { name: 'b', creationTimestamp: '2026-01-02T00:00:00Z' }, spec: { addresses: ['10.10.10.90-10.10.10.120'] } },
  ], LEGACY);
  assert.deepEqual(r.pools.map((p) => p.name), ['default']);
  assert.equal(r.overlaps[0]!.pool.name, 'b');
  assert.equal(r.overlaps[0]!.with, 'default');
});

test('seed 000: loadBalancerIP in the legacy pool; outside every pool is a clear failure', () => {
  assert.deepEqual(alloc(svc('web', { ip: '10.10.10.51' })), { ok: true, ips: ['10.10.10.51'], pool: 'default' });
  const out = alloc(svc('web', { ip: '10.10.20.51' }));
  assert.equal(out.ok, false);
  assert.match((out as any).message, /10\.10\.20\.51 is outside every address pool/);
  // The annotation wins over spec.loadBalancerIP.
  assert.deepEqual(alloc(svc('web', { ip: '10.10.10.51', ann: { 'metallb.io/loadBalancerIPs': '10.10.10.60' } })), { ok: true, ips: ['10.10.10.60'], pool: 'default' });
});

test('auto-assign picks the first free address; existing assignments are kept', () => {
  const a = svc('a', { ingress: ['10.10.10.50'] });
  assert.deepEqual(alloc(svc('b'), legacyPools(), usageOf(['10.10.10.50', a])), { ok: true, ips: ['10.10.10.51'], pool: 'default' });
  assert.deepEqual(alloc(svc('c', { ingress: ['10.10.10.77'] }), legacyPools(), usageOf(['10.10.10.50', a])), { ok: true, ips: ['10.10.10.77'], pool: 'default' });
});

test('sharing: same key and distinct ports share (TCP+UDP on one IP); otherwise a clear failure', () => {
  const key = { 'metallb.io/allow-shared-ip': 'dns' };
  const tcp = svc('dns-tcp', { ip: '10.10.10.51', ann: key, ports: [[53, 'TCP']] });
  const udp = svc('dns-udp', { ip: '10.10.10.51', ann: key, ports: [[53, 'UDP']] });
  assert.equal(alloc(udp, legacyPools(), usageOf(['10.10.10.51', tcp])).ok, true);
  // Without an explicit request, a sharing Service joins the address of its key.
  const udp2 = svc('dns-udp2', { ann: key, ports: [[5353, 'UDP']] });
  assert.deepEqual(alloc(udp2, legacyPools(), usageOf(['10.10.10.51', tcp])), { ok: true, ips: ['10.10.10.51'], pool: 'default' });
  const clash = alloc(svc('x', { ip: '10.10.10.51', ann: key, ports: [[53, 'TCP']] }), legacyPools(), usageOf(['10.10.10.51', tcp]));
  assert.match((clash as any).message, /port TCP\/53 is used there by default\/dns-tcp/);
  const noKey = alloc(svc('y', { ip: '10.10.10.51', ports: [[80, 'TCP']] }), legacyPools(), usageOf(['10.10.10.51', tcp]));
  assert.match((noKey as any).message, /allow-shared-ip/);
  const other = alloc(svc('z', { ip: '10.10.10.51', ann: { 'metallb.io/allow-shared-ip': 'other' }, ports: [[80, 'TCP']] }), legacyPools(), usageOf(['10.10.10.51', tcp]));
  assert.equal(other.ok, false);
  const local = alloc(svc('l', { ip: '10.10.10.51', ann: key, ports: [[99, 'TCP']], local: true }), legacyPools(), usageOf(['10.10.10.51', tcp]));
  assert.match((local as any).message, /externalTrafficPolicy/);
});

test('pinning to a pool, autoAssign false, avoidBuggyIPs, serviceAllocation', () => {
  const pools = collectPools([
    { metadata: { name: 'manual' }, spec: { addresses: ['192.168.5.0/24'], autoAssign: false } },
    { metadata: { name: 'buggy' }, spec: { addresses: ['192.168.6.255-192.168.7.1'], avoidBuggyIPs: true } },
    { metadata: { name: 'team' }, spec: { addresses: ['192.168.8.10-192.168.8.11'], serviceAllocation: { priority: 1, namespaces: ['team'] } } },
  ], undefined).pools;
  // autoAssign false pools hand out addresses only on request.
  assert.deepEqual(allocate({ svc: svc('a'), pools: pools.filter((p) => p.name === 'manual'), usage: new Map(), namespaceLabels: {} }).ok, false);
  assert.deepEqual(allocate({ svc: svc('a', { ip: '192.168.5.9' }), pools, usage: new Map(), namespaceLabels: {} }), { ok: true, ips: ['192.168.5.9'], pool: 'manual' });
  // avoidBuggyIPs: .255 and .0 skipped.
  assert.deepEqual(allocate({ svc: svc('b'), pools, usage: new Map(), namespaceLabels: {} }), { ok: true, ips: ['192.168.7.1'], pool: 'buggy' });
  assert.match((allocate({ svc: svc('b', { ip: '192.168.7.0' }), pools, usage: new Map(), namespaceLabels: {} }) as any).message, /avoidBuggyIPs/);
  // The team pool has priority for its namespace and serves no other.
  assert.deepEqual(allocate({ svc: svc('c', { ns: 'team' }), pools, usage: new Map(), namespaceLabels: {} }), { ok: true, ips: ['192.168.8.10'], pool: 'team' });
  assert.match((allocate({ svc: svc('d', { ip: '192.168.8.11' }), pools, usage: new Map(), namespaceLabels: {} }) as any).message, /does not serve this Service/);
  // metallb.io/address-pool pins.
  assert.deepEqual(allocate({ svc: svc('e', { ann: { 'metallb.io/address-pool': 'buggy' } }), pools, usage: new Map(), namespaceLabels: {} }).ok, true);
  assert.match((allocate({ svc: svc('e', { ann: { 'metallb.io/address-pool': 'nope' } }), pools, usage: new Map(), namespaceLabels: {} }) as any).message, /does not exist/);
  // Exhaustion.
  const full = usageOf(['192.168.8.10', svc('x1')], ['192.168.8.11', svc('x2')]);
  assert.match((allocate({ svc: svc('f', { ns: 'team', ann: { 'metallb.io/address-pool': 'team' } }), pools, usage: full, namespaceLabels: {} }) as any).message, /no available IPs/);
  // Ownership: pools serve a Service when any pool admits it.
  assert.equal(servedByPools(svc('g'), pools, {}), true);
  assert.equal(servedByPools(svc('g'), pools.filter((p) => p.name === 'team'), {}), false);
});

const node = (name: string, ip: string, labels: Record<string, string> = {}, ext?: string, ready = true) => ({
  metadata: { name, labels },
  status: {
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    addresses: [{ type: 'InternalIP', address: ip }, ...(ext ? [{ type: 'ExternalIP', address: ext }] : []), { type: 'Hostname', address: name }],
  },
});

test('ServiceLB: ready nodes, enablelb allow-list, lbpool pinning, Local endpoints, ExternalIP first', () => {
  const nodes = [node('n1', '10.0.0.1'), node('n2', '10.0.0.2'), node('n3', '10.0.0.3', {}, undefined, false)];
  const none = () => new Set<string>();
  const run = (services: any[], ns = nodes, ready: (k: string) => Set<string> = none) => serviceLbAddresses({ services, nodes: ns, readyEndpointNodes: ready });
  assert.deepEqual(run([svc('a')]).get('default/a')!.ips, ['10.0.0.1', '10.0.0.2']);
  const allow = [node('n1', '10.0.0.1', { [ENABLE_LB_LABEL]: 'true' }), node('n2', '10.0.0.2')];
  assert.deepEqual(run([svc('a')], allow).get('default/a')!.ips, ['10.0.0.1']);
  const pooled = [node('n1', '10.0.0.1', { [LB_POOL_LABEL]: 'blue' }), node('n2', '10.0.0.2', { [LB_POOL_LABEL]: 'red' })];
  assert.deepEqual(run([svc('a', { labels: { [LB_POOL_LABEL]: 'red' } })], pooled).get('default/a')!.ips, ['10.0.0.2']);
  assert.deepEqual(run([svc('a', { local: true })], nodes, () => new Set(['n2'])).get('default/a')!.ips, ['10.0.0.2']);
  const ext = [node('n1', '10.0.0.1', {}, '203.0.113.1'), node('n2', '10.0.0.2')];
  assert.deepEqual(run([svc('a')], ext).get('default/a')!.ips, ['203.0.113.1']);
});

test('ServiceLB: the older Service keeps a port; the newer is left out on those nodes, with the reason', () => {
  const nodes = [node('n1', '10.0.0.1'), node('n2', '10.0.0.2', { [LB_POOL_LABEL]: 'b' })];
  const first = svc('first', { created: '2026-01-01T00:00:00Z', labels: { [LB_POOL_LABEL]: 'b' } });
  const second = svc('second', { created: '2026-01-02T00:00:00Z' });
  const third = svc('third', { created: '2026-01-03T00:00:00Z', ports: [[80, 'UDP']] });
  const r = serviceLbAddresses({ services: [third, second, first], nodes, readyEndpointNodes: () => new Set() });
  assert.deepEqual(r.get('default/first')!.ips, ['10.0.0.2']);
  assert.deepEqual(r.get('default/second')!.ips, ['10.0.0.1']);
  assert.deepEqual(r.get('default/second')!.conflicts, [{ node: 'n2', port: 'TCP/80', holder: 'default/first' }]);
  assert.deepEqual(r.get('default/third')!.ips, ['10.0.0.1', '10.0.0.2']);   // UDP/80 is another port
});

test('announcement: only layer-2 pool addresses with ready endpoints, advertisements select pools and nodes', () => {
  const pools = collectPools([
    { metadata: { name: 'lan', labels: { zone: 'a' } }, spec: { addresses: ['192.168.9.0/24'] } },
    { metadata: { name: 'unadvertised' }, spec: { addresses: ['192.168.10.0/24'] } },
  ], LEGACY).pools;
  const ads = [{ name: 'ad', ipAddressPoolSelectors: [{ matchLabels: { zone: 'a' } }], nodeSelectors: [{ matchLabels: { edge: 'yes' } }], interfaces: ['eth1'] }];
  const services = [
    svc('legacy', { ingress: ['10.10.10.51'] }), svc('legacy-udp', { ingress: ['10.10.10.51'], ports: [[53, 'UDP']] }),
    svc('crd', { ingress: ['192.168.9.5'] }), svc('nope', { ingress: ['192.168.10.5'] }),
    svc('local', { ingress: ['10.10.10.52'], local: true }), svc('noeps', { ingress: ['10.10.10.53'] }),
  ];
  const ready = (k: string) => (k === 'default/noeps' ? [] : k === 'default/local' ? ['other'] : ['n1']);
  const mine = desiredAddresses({ nodeName: 'n1', nodeLabels: { edge: 'yes' }, services, pools, advertisements: ads, readyEndpointNodes: ready });
  assert.deepEqual([...mine.keys()].sort(), ['10.10.10.51', '192.168.9.5']);
  assert.equal(mine.get('10.10.10.51')!.services.length, 2);
  assert.deepEqual(mine.get('192.168.9.5')!.interfaces, ['eth1']);
  const unlabelled = desiredAddresses({ nodeName: 'n1', nodeLabels: {}, services, pools, advertisements: ads, readyEndpointNodes: ready });
  assert.deepEqual([...unlabelled.keys()], ['10.10.10.51']);
  const other = desiredAddresses({ nodeName: 'other', nodeLabels: {}, services, pools, advertisements: ads, readyEndpointNodes: ready });
  assert.deepEqual([...other.keys()].sort(), ['10.10.10.51', '10.10.10.52']);
});
