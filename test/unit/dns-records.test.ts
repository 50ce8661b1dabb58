// The cluster zone as CoreDNS's kubernetes plugin answers it: every record type, NXDOMAIN vs NODATA
// (with the SOA), PTR, headless and StatefulSet names, ExternalName, pod and node names, and the
// EndpointSlice → entry conversion (ready endpoints only, ports per slice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterRecords, CLUSTER_TTL, HOSTS_TTL } from '../../src/agent/dns/records.js';
import { serviceEntry } from '../../src/agent/dns/service-entry.js';
import { reverseName, ipv6Nibbles, ipFromDashed } from '../../src/agent/dns/names.js';
import { parseDnsConfigMap } from '../../src/agent/dns/config.js';

const svc = (name: string, spec: object, ns = 'team') => ({ metadata: { name, namespace: ns }, spec });
const slice = (svcName: string, endpoints: object[], ports: object[], addressType = 'IPv4') => ({
  metadata: { name: `${svcName}-x`, namespace: 'team', labels: { 'kubernetes.io/service-name': svcName } }, addressType, endpoints, ports,
});

function zone(): ClusterRecords {
  const r = new ClusterRecords({ clusterDomain: 'cluster.local', clusterDns: '10.43.0.10' });
  r.setNamespaces(['team', 'default', 'empty']);
  r.setService(serviceEntry(svc('web', { clusterIP: '10.43.0.20', clusterIPs: ['10.43.0.20'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { port: 81 }] }),
    [slice('web', [{ addresses: ['10.42.1.5'], conditions: { ready: true } }], [{ name: 'http', port: 8080, protocol: 'TCP' }])]));
  r.setService(serviceEntry(svc('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }), [
    slice('db', [
      { addresses: ['10.42.1.7'], hostname: 'db-0', conditions: { ready: true } },
      { addresses: ['10.42.2.8'], hostname: 'db-1' },                                  // nil ready = ready
      { addresses: ['10.42.2.9'], hostname: 'db-2', conditions: { ready: false } },    // not ready: not served
    ], [{ name: 'pg', port: 5432, protocol: 'TCP' }]),
  ]));
  r.setService(serviceEntry(svc('ext', { type: 'ExternalName', externalName: 'db.example.com' }), []));
  r.setService(serviceEntry(svc('alias', { type: 'ExternalName', externalName: 'web.team.svc.cluster.local' }), []));
  r.setService(serviceEntry(svc('lonely', { clusterIP: 'None' }), []));
  r.setNode('node-a', ['192.168.1.10', 'fd00::10']);
  return r;
}

const data = (a: ReturnType<ClusterRecords['answer']>) => a!.answers.map((x: any) => x.data);

test('A for a ClusterIP Service, AAAA is NODATA with the SOA (IPv4-only), TTL 5', () => {
  const r = zone();
  const a = r.answer('web.team.svc.cluster.local.', 'A')!;
  assert.equal(a.rcode, 'NOERROR');
  assert.deepEqual(a.answers, [{ name: 'web.team.svc.cluster.local.', type: 'A', ttl: CLUSTER_TTL, data: '10.43.0.20' }]);
  const aaaa = r.answer('web.team.svc.cluster.local', 'AAAA')!;
  assert.equal(aaaa.rcode, 'NOERROR');
  assert.equal(aaaa.answers.length, 0);
  assert.equal(aaaa.authorities[0]!.type, 'SOA');
  assert.equal((aaaa.authorities[0] as any).data.minimum, 5);
  assert.deepEqual(data(r.answer('WEB.Team.SVC.cluster.local', 'A')), ['10.43.0.20'], 'case-insensitive');
});

test('NXDOMAIN vs NODATA as the spec says', () => {
  const r = zone();
  const rc = (n: string, t = 'A') => { const a = r.answer(n, t)!; return `${a.rcode}/${a.answers.length}`; };
  assert.equal(rc('nope.team.svc.cluster.local'), 'NXDOMAIN/0');
  assert.equal(rc('web.nons.svc.cluster.local'), 'NXDOMAIN/0');
  assert.equal(rc('team.svc.cluster.local'), 'NOERROR/0', 'an existing namespace is an empty non-terminal');
  assert.equal(rc('empty.svc.cluster.local'), 'NOERROR/0');
  assert.equal(rc('nons.svc.cluster.local'), 'NXDOMAIN/0');
  assert.equal(rc('svc.cluster.local'), 'NOERROR/0');
  assert.equal(rc('cluster.local'), 'NOERROR/0');
  assert.equal(rc('whatever.cluster.local'), 'NXDOMAIN/0');
  assert.equal(rc('web.team.svc.cluster.local', 'MX'), 'NOERROR/0');
  assert.equal(rc('lonely.team.svc.cluster.local'), 'NXDOMAIN/0', 'headless without ready endpoints (CoreDNS)');
  assert.equal(rc('a.b.web.team.svc.cluster.local'), 'NXDOMAIN/0');
  for (const n of ['nope.team.svc.cluster.local', 'team.svc.cluster.local']) assert.equal(r.answer(n, 'A')!.authorities[0]!.type, 'SOA');
  assert.equal(r.answer('example.com', 'A'), undefined, 'not ours: forwarded');
  assert.equal(r.answer('cluster.localx', 'A'), undefined);
});

test('headless: every ready endpoint; StatefulSet pods by hostname; endpoints by dashed IP', () => {
  const r = zone();
  assert.deepEqual(data(r.answer('db.team.svc.cluster.local', 'A')).sort(), ['10.42.1.7', '10.42.2.8']);
  assert.deepEqual(data(r.answer('db-0.db.team.svc.cluster.local', 'A')), ['10.42.1.7']);
  assert.equal(r.answer('db-2.db.team.svc.cluster.local', 'A')!.rcode, 'NXDOMAIN', 'not-ready endpoint');
  assert.deepEqual(data(r.answer('10-42-1-5.web.team.svc.cluster.local', 'A')), ['10.42.1.5']);
});

test('SRV: named ports of a ClusterIP Service, one per endpoint for headless; bare name lists all ports', () => {
  const r = zone();
  const s = r.answer('_http._tcp.web.team.svc.cluster.local', 'SRV')!;
  assert.deepEqual(data(s), [{ priority: 0, weight: 100, port: 80, target: 'web.team.svc.cluster.local' }]);
  assert.deepEqual(s.additionals.map((x: any) => [x.name, x.data]), [['web.team.svc.cluster.local', '10.43.0.20']]);
  assert.equal(r.answer('_http._udp.web.team.svc.cluster.local', 'SRV')!.rcode, 'NXDOMAIN');
  assert.equal(r.answer('_nope._tcp.web.team.svc.cluster.local', 'SRV')!.rcode, 'NXDOMAIN');
  assert.deepEqual(data(r.answer('web.team.svc.cluster.local', 'SRV')).map((d: any) => d.port), [80, 81]);
  const h = r.answer('_pg._tcp.db.team.svc.cluster.local', 'SRV')!;
  assert.deepEqual(data(h).map((d: any) => [d.target, d.port]).sort(), [['db-0.db.team.svc.cluster.local', 5432], ['db-1.db.team.svc.cluster.local', 5432]]);
  assert.equal(h.additionals.length, 2);
});

test('ExternalName: CNAME to chase upstream, or resolved here when the target is in the zone', () => {
  const r = zone();
  const e = r.answer('ext.team.svc.cluster.local', 'A')!;
  assert.deepEqual(e.answers, [{ name: 'ext.team.svc.cluster.local', type: 'CNAME', ttl: CLUSTER_TTL, data: 'db.example.com' }]);
  assert.equal(e.chase, 'db.example.com');
  const a = r.answer('alias.team.svc.cluster.local', 'A')!;
  assert.deepEqual(a.answers.map((x: any) => [x.type, x.data]), [['CNAME', 'web.team.svc.cluster.local'], ['A', '10.43.0.20']]);
  assert.equal(a.chase, undefined);
});

test('PTR for ClusterIPs, endpoint addresses and nodes; unknown addresses fall through', () => {
  const r = zone();
  assert.deepEqual(data(r.answer(reverseName('10.43.0.20'), 'PTR')), ['web.team.svc.cluster.local']);
  assert.deepEqual(data(r.answer('7.1.42.10.in-addr.arpa.', 'PTR')), ['db-0.db.team.svc.cluster.local']);
  assert.deepEqual(data(r.answer('5.1.42.10.in-addr.arpa', 'PTR')), ['10-42-1-5.web.team.svc.cluster.local']);
  const node = r.answer(reverseName('192.168.1.10'), 'PTR')!;
  assert.deepEqual(data(node), ['node-a']);
  assert.equal((node.answers[0] as any).ttl, HOSTS_TTL);
  assert.deepEqual(data(r.answer(reverseName('fd00::10'), 'PTR')), ['node-a']);
  assert.equal(r.answer(reverseName('10.42.9.9'), 'PTR'), undefined);
  assert.equal(r.answer('1.2.in-addr.arpa', 'PTR'), undefined, 'a partial reverse name is not ours');
  r.deleteService('team', 'web');
  assert.equal(r.answer(reverseName('10.43.0.20'), 'PTR'), undefined, 'a deleted Service leaves no PTR');
});

test('pods (insecure), ns.dns, dns-version, node names and extra hosts', () => {
  const r = zone();
  assert.deepEqual(data(r.answer('10-42-1-99.team.pod.cluster.local', 'A')), ['10.42.1.99']);
  assert.equal(r.answer('10-42-1-99.nons.pod.cluster.local', 'A')!.rcode, 'NXDOMAIN');
  assert.equal(r.answer('not-an-ip.team.pod.cluster.local', 'A')!.rcode, 'NXDOMAIN');
  assert.equal(r.answer('team.pod.cluster.local', 'A')!.rcode, 'NOERROR');
  assert.deepEqual(data(r.answer('ns.dns.cluster.local', 'A')), ['10.43.0.10']);
  assert.deepEqual(data(r.answer('dns-version.cluster.local', 'TXT')), ['1.1.0']);
  assert.deepEqual(data(r.answer('cluster.local', 'NS')), ['ns.dns.cluster.local']);
  assert.equal(r.answer('cluster.local', 'SOA')!.answers[0]!.type, 'SOA');
  assert.deepEqual(data(r.answer('node-a', 'A')), ['192.168.1.10']);
  assert.deepEqual(data(r.answer('node-a.', 'AAAA')), ['fd00::10']);
  r.setExtraHosts(parseDnsConfigMap({ hosts: '192.0.2.1 printer printer.lan\n# c\nbad line\n' }).hosts);
  assert.deepEqual(data(r.answer('printer.lan', 'A')), ['192.0.2.1']);
  assert.equal(r.answer('printer', 'AAAA')!.answers.length, 0);
  r.deleteNode('node-a');
  assert.equal(r.answer('node-a', 'A'), undefined);
});

test('service entries: ready endpoints once per address, ports merged across slices, FQDN slices ignored', () => {
  const e = serviceEntry(svc('s', { clusterIP: 'None' }), [
    slice('s', [{ addresses: ['10.42.0.1'] }], [{ name: 'a', port: 1, protocol: 'TCP' }]),
    slice('s', [{ addresses: ['10.42.0.1'] }], [{ name: 'b', port: 2, protocol: 'UDP' }]),
    slice('s', [{ addresses: ['x.example'] }], [], 'FQDN'),
    slice('s', [{ addresses: ['10.42.0.2'], conditions: { ready: false } }], []),
  ]);
  assert.equal(e.kind, 'Headless');
  assert.deepEqual(e.endpoints, [{ ip: '10.42.0.1', ports: [{ name: 'a', protocol: 'TCP', port: 1 }, { name: 'b', protocol: 'UDP', port: 2 }] }]);
  const p = serviceEntry(svc('s', { clusterIP: 'None', publishNotReadyAddresses: true }), [slice('s', [{ addresses: ['10.42.0.2'], conditions: { ready: false } }], [])]);
  assert.equal(p.endpoints.length, 1, 'publishNotReadyAddresses');
});

test('names: IPv6 nibbles, dashed pod addresses, config problems reported not thrown', () => {
  assert.equal(ipv6Nibbles('fd00::1'), 'fd000000000000000000000000000001');
  assert.equal(ipv6Nibbles('::ffff:1.2.3.4'), '00000000000000000000ffff01020304');
  assert.equal(ipFromDashed('10-42-1-5'), '10.42.1.5');
  assert.equal(ipFromDashed('fd00--5'), 'fd00::5');
  assert.equal(ipFromDashed('1-2-3'), undefined);
  const c = parseDnsConfigMap({ stubDomains: '{"corp.example": ["192.0.2.53", "192.0.2.54:5353"], "bad": ["x"]}', hosts: 'nope' });
  assert.deepEqual(c.stubDomains.get('corp.example'), [{ host: '192.0.2.53', port: 53 }, { host: '192.0.2.54', port: 5353 }]);
  assert.equal(c.stubDomains.has('bad'), false);
  assert.equal(c.problems.length, 2);
  assert.equal(parseDnsConfigMap({ stubDomains: '{' }).problems.length, 1);
  assert.deepEqual(parseDnsConfigMap({ upstreamNameservers: '["192.0.2.1", "[fd00::1]:5353"]' }).upstreamNameservers,
    [{ host: '192.0.2.1', port: 53 }, { host: 'fd00::1', port: 5353 }]);
  assert.equal(parseDnsConfigMap({ upstreamNameservers: '[]' }).upstreamNameservers, undefined, 'empty: the resolv.conf still applies');
});
