// The service proxy's model: Services + EndpointSlices → what each port captures and where it sends
// traffic, with kube-proxy's endpoint choice (ready; else serving-and-terminating; else nothing),
// traffic policies, session affinity and the cases that need no rules (headless, ExternalName).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServiceModel, type Endpoint } from '../../src/agent/network/proxy/model.js';
import { staleUdpFlows } from '../../src/agent/network/proxy/conntrack.js';
import { healthBody } from '../../src/agent/network/proxy/healthcheck.js';
import { nodePortIps } from '../../src/agent/network/proxy/controller.js';
import { podGateway } from '../../src/agent/dns/listen-address.js';
const firstHostAddress = (cidr: string) => podGateway(cidr).address;

const svc = (name: string, spec: any, status: any = {}): any => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'ns', name }, spec, status });
const slice = (svcName: string, eps: any[], ports: any[] = [{ name: 'http', port: 8080, protocol: 'TCP' }], name = `${svcName}-x`): any => ({
  metadata: { namespace: 'ns', name, labels: { 'kubernetes.io/service-name': svcName } }, addressType: 'IPv4', endpoints: eps, ports,
});
const ep = (ip: string, nodeName: string, conditions: any = {}) => ({ addresses: [ip], nodeName, conditions });
const ips = (eps: Endpoint[]) => eps.map((e) => e.ip);
const o = { nodeName: 'a' };
const web = (extra: any = {}) => svc('web', { clusterIP: '10.43.0.20', ports: [{ name: 'http', port: 80 }], ...extra });

test('ClusterIP: ready endpoints, sorted, one per IP across slices', () => {
  const m = buildServiceModel(web(), [
    slice('web', [ep('10.42.2.5', 'b'), ep('10.42.1.5', 'a'), ep('10.42.1.6', 'a', { ready: false })]),
    slice('web', [ep('10.42.2.5', 'b'), ep('10.42.3.1', 'c')], undefined, 'web-y'),
  ], o)!;
  assert.equal(m.key, 'ns/web');
  const [p] = m.ports;
  assert.equal(p!.name, 'ns/web/tcp/http');
  assert.equal(p!.clusterIp, '10.43.0.20');
  assert.deepEqual(ips(p!.clusterEndpoints), ['10.42.1.5', '10.42.2.5', '10.42.3.1']);
  assert.deepEqual(ips(p!.localEndpoints), ['10.42.1.5']);
  assert.equal(p!.clusterEndpoints[0]!.port, 8080);
  assert.equal(p!.hasEndpoints, true);
  assert.equal(m.localReadyEndpoints, 1);
});

test('no ready endpoint: serving-and-terminating ones are used; none at all: no endpoints', () => {
  const m = buildServiceModel(web(), [slice('web', [
    ep('10.42.1.5', 'a', { ready: false, serving: true, terminating: true }),
    ep('10.42.1.6', 'a', { ready: false, serving: false, terminating: true }),
    ep('10.42.1.7', 'a', { ready: false }),
  ])], o)!;
  assert.deepEqual(ips(m.ports[0]!.clusterEndpoints), ['10.42.1.5']);
  const none = buildServiceModel(web(), [slice('web', [ep('10.42.1.7', 'a', { ready: false })])], o)!;
  assert.equal(none.ports[0]!.hasEndpoints, false);
  const noSlices = buildServiceModel(web(), [], o)!;
  assert.equal(noSlices.ports[0]!.hasEndpoints, false, 'a Service without slices still gets a port (to be rejected)');
});

test('ports match slices by name and protocol; unnamed single ports work', () => {
  const m = buildServiceModel(svc('dns', { clusterIP: '10.43.0.30', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] }),
    [slice('dns', [ep('10.42.1.9', 'a')], [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'dns-tcp', port: 5354, protocol: 'TCP' }])], o)!;
  assert.deepEqual(m.ports.map((p) => [p.protocol, p.port, p.clusterEndpoints[0]?.port]), [['udp', 53, 5353], ['tcp', 53, 5354]]);
  const unnamed = buildServiceModel(svc('u', { clusterIP: '10.43.0.31', ports: [{ port: 80 }] }), [slice('u', [ep('10.42.1.9', 'a')], [{ port: 9000 }])], o)!;
  assert.equal(unnamed.ports[0]!.clusterEndpoints[0]!.port, 9000);
  assert.equal(unnamed.ports[0]!.name, 'ns/u/tcp/');
});

test('headless, ExternalName, IPv6-only and nameless Services need no rules', () => {
  assert.equal(buildServiceModel(web({ clusterIP: 'None' }), [], o), undefined);
  assert.equal(buildServiceModel(svc('x', { type: 'ExternalName', externalName: 'example.com' }), [], o), undefined);
  assert.equal(buildServiceModel(web({ clusterIP: 'fd00::1' }), [], o), undefined);
  assert.equal(buildServiceModel(web({ clusterIP: undefined }), [], o), undefined);
});

test('malformed input is skipped, never thrown on', () => {
  const bad = [
    web({ ports: 'nope' }), web({ ports: [{ port: 0 }, { port: 70000 }, { port: 'x' }, { port: 80, protocol: 'ICMP' }, null] }),
    web({ externalIPs: ['not-an-ip', 7, '1.2.3.4; drop'] }), svc('Bad_Name', { clusterIP: '10.43.0.1', ports: [{ port: 80 }] }),
    web({ ports: [{ name: 'x;drop', port: 80 }] }),
  ];
  for (const s of bad) assert.doesNotThrow(() => buildServiceModel(s, [slice('web', [{ addresses: 'x' }, null, ep('1.2.3', 'a')], [{ port: 'x' }, null])], o));
  assert.equal(buildServiceModel(bad[1], [], o), undefined);
  assert.deepEqual(buildServiceModel(bad[2], [], o)!.ports[0]!.externalIps, []);
  assert.equal(buildServiceModel(bad[3], [], o), undefined);
  assert.equal(buildServiceModel(bad[4], [], o), undefined);
});

test('NodePort, externalIPs and load-balancer IPs; LB IPs only on LoadBalancer Services', () => {
  const np = buildServiceModel(web({ type: 'NodePort', externalIPs: ['192.0.2.1', '192.0.2.1'], ports: [{ name: 'http', port: 80, nodePort: 30123 }] }),
    [], o)!.ports[0]!;
  assert.equal(np.nodePort, 30123);
  assert.deepEqual(np.externalIps, ['192.0.2.1']);
  assert.equal(buildServiceModel(web({ ports: [{ name: 'http', port: 80, nodePort: 30123 }] }), [], o)!.ports[0]!.nodePort, 0, 'ClusterIP type: no NodePort');
  const lb = buildServiceModel(svc('web', { type: 'LoadBalancer', clusterIP: '10.43.0.20', ports: [{ name: 'http', port: 80, nodePort: 30124 }] }, { loadBalancer: { ingress: [{ ip: '192.0.2.9' }, { hostname: 'x' }] } }), [], o)!;
  assert.deepEqual(lb.ports[0]!.loadBalancerIps, ['192.0.2.9']);
  const notLb = buildServiceModel(svc('web', { type: 'NodePort', clusterIP: '10.43.0.20', ports: [{ port: 80 }] }, { loadBalancer: { ingress: [{ ip: '192.0.2.9' }] } }), [], o)!;
  assert.deepEqual(notLb.ports[0]!.loadBalancerIps, []);
});

test('traffic policies and the health check port', () => {
  const lb = buildServiceModel(web({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ name: 'http', port: 80, nodePort: 30124 }] }),
    [slice('web', [ep('10.42.2.5', 'b')])], o)!;
  assert.equal(lb.ports[0]!.externalPolicyLocal, true);
  assert.equal(lb.healthCheckNodePort, 32000);
  assert.equal(lb.localReadyEndpoints, 0);
  assert.deepEqual(lb.ports[0]!.localEndpoints, []);
  // externalTrafficPolicy means nothing without external addresses.
  assert.equal(buildServiceModel(web({ externalTrafficPolicy: 'Local' }), [], o)!.ports[0]!.externalPolicyLocal, false);
  assert.equal(buildServiceModel(web({ internalTrafficPolicy: 'Local' }), [], o)!.ports[0]!.internalPolicyLocal, true);
});

test('session affinity: ClientIP with timeoutSeconds, default 10800', () => {
  assert.equal(buildServiceModel(web({ sessionAffinity: 'ClientIP' }), [], o)!.ports[0]!.affinitySeconds, 10800);
  assert.equal(buildServiceModel(web({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }), [], o)!.ports[0]!.affinitySeconds, 60);
  assert.equal(buildServiceModel(web({ sessionAffinity: 'None' }), [], o)!.ports[0]!.affinitySeconds, undefined);
});

test('reserved keys (the cluster DNS redirect) are not claimed by a Service', () => {
  const dns = svc('kube-dns', { clusterIP: '10.43.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }, { name: 'metrics', port: 9153 }] });
  const m = buildServiceModel(dns, [], { nodeName: 'a', reserved: new Set(['10.43.0.10 . udp . 53', '10.43.0.10 . tcp . 53']) })!;
  assert.deepEqual(m.ports.map((p) => p.port), [9153]);
});

test('UDP conntrack cleanup: flows to removed endpoints, and a Service that gains its first endpoint', () => {
  const dns = (eps: any[]) => buildServiceModel(svc('d', { type: 'NodePort', clusterIP: '10.43.0.40', ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] }),
    [slice('d', eps, [{ name: 'dns', port: 53, protocol: 'UDP' }])], o);
  const before = dns([ep('10.42.1.5', 'a'), ep('10.42.2.5', 'b')]);
  const after = dns([ep('10.42.2.5', 'b')]);
  assert.deepEqual(staleUdpFlows(before, after), [
    ['-D', '-p', 'udp', '--orig-dst', '10.43.0.40', '--dst-nat', '10.42.1.5'],
    ['-D', '-p', 'udp', '--orig-port-dst', '30053', '--dst-nat', '10.42.1.5'],
  ]);
  assert.deepEqual(staleUdpFlows(dns([]), after), [['-D', '-p', 'udp', '--orig-dst', '10.43.0.40']]);
  assert.deepEqual(staleUdpFlows(after, after), []);
  const tcp = buildServiceModel(web(), [slice('web', [ep('10.42.1.5', 'a')])], o);
  assert.deepEqual(staleUdpFlows(tcp, undefined), [], 'TCP flows end by themselves');
});

test('health check body is kube-proxy\'s JSON; gateway address of a pod CIDR', () => {
  assert.deepEqual(JSON.parse(healthBody({ namespace: 'ns', name: 'web' }, 2)), { service: { namespace: 'ns', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true });
  assert.equal(firstHostAddress('10.42.1.0/24'), '10.42.1.1');
  assert.equal(firstHostAddress('10.42.0.0/16'), '10.42.0.1');
  // --nodeport-addresses: this node's addresses inside the CIDRs, never loopback.
  assert.deepEqual(nodePortIps(['127.0.0.0/8']), []);
  assert.ok(nodePortIps(['0.0.0.0/0']).every((ip) => !ip.startsWith('127.')));
  assert.deepEqual(nodePortIps(['not-a-cidr', '1.2.3.4/40']), []);
});
