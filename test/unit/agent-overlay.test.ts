// Which nodes each pod network backend routes to, from their flannel annotations, what this node
// publishes, which interface the backend uses and the MTU pods get from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointAnnotations, gatewayOf, peersFrom, VXLAN_OVERHEAD } from '../../src/agent/network/backends/vxlan.js';
import { hostGwAnnotations, hostGwPeersFrom } from '../../src/agent/network/backends/host-gw.js';
import { pickUnderlay, type IpLink } from '../../src/agent/network/underlay.js';
import { masqueradeRules } from '../../src/agent/network/masquerade.js';
import { parseFlannelBackend } from '../../src/api/agent-config.js';

const node = (name: string, podCIDR: string | undefined, annotations: Record<string, string>) =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name, annotations }, spec: { podCIDR } });

test('vxlan peers: other nodes with a vxlan endpoint and a pod CIDR; malformed ones skipped', () => {
  const good = endpointAnnotations('AA:bb:cc:dd:ee:01', '192.168.1.2');
  const peers = peersFrom([
    node('self', '10.42.0.0/24', endpointAnnotations('aa:bb:cc:dd:ee:00', '192.168.1.1')),
    node('b', '10.42.1.0/24', good),
    node('no-cidr', undefined, good),
    node('host-gw', '10.42.2.0/24', { ...good, 'flannel.alpha.coreos.com/backend-type': 'host-gw' }),
    node('bad-mac', '10.42.3.0/24', { ...good, 'flannel.alpha.coreos.com/backend-data': '{"VtepMAC":"nope"}' }),
    node('bad-json', '10.42.4.0/24', { ...good, 'flannel.alpha.coreos.com/backend-data': '{' }),
    node('null-data', '10.42.5.0/24', { ...good, 'flannel.alpha.coreos.com/backend-data': 'null' }),
    node('bad-ip', '10.42.6.0/24', { ...good, 'flannel.alpha.coreos.com/public-ip': '1.2.3.4; rm -rf /' }),
  ], 'self');
  assert.deepEqual(peers, [{ name: 'b', podCidr: '10.42.1.0/24', publicIp: '192.168.1.2', vtepMac: 'aa:bb:cc:dd:ee:01' }]);
  assert.equal(gatewayOf('10.42.1.0/24'), '10.42.1.0');
  assert.deepEqual(JSON.parse(good['flannel.alpha.coreos.com/backend-data']!), { VNI: 1, VtepMAC: 'AA:bb:cc:dd:ee:01' });
});

test('host-gw: publishes flannel\'s annotations (backend-data null) and routes only to host-gw peers', () => {
  const mine = hostGwAnnotations('192.168.1.1');
  assert.equal(mine['flannel.alpha.coreos.com/backend-type'], 'host-gw');
  assert.equal(mine['flannel.alpha.coreos.com/backend-data'], 'null');
  assert.equal(mine['flannel.alpha.coreos.com/public-ip'], '192.168.1.1');
  const peers = hostGwPeersFrom([
    node('self', '10.42.0.0/24', mine),
    node('c', '10.42.2.0/24', hostGwAnnotations('192.168.1.3')),
    node('b', '10.42.1.0/24', hostGwAnnotations('192.168.1.2')),
    node('vx', '10.42.3.0/24', endpointAnnotations('aa:bb:cc:dd:ee:01', '192.168.1.4')),
    node('no-ip', '10.42.4.0/24', { 'flannel.alpha.coreos.com/backend-type': 'host-gw' }),
    node('no-cidr', undefined, hostGwAnnotations('192.168.1.5')),
  ], 'self');
  assert.deepEqual(peers, [
    { name: 'b', podCidr: '10.42.1.0/24', publicIp: '192.168.1.2' },
    { name: 'c', podCidr: '10.42.2.0/24', publicIp: '192.168.1.3' },
  ]);
});

test('underlay: --flannel-iface, else the node IP\'s interface, else the default route\'s; MTU from it', () => {
  const links: IpLink[] = [
    { ifname: 'lo', mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', scope: 'host' }] },
    { ifname: 'eth0', mtu: 1400, addr_info: [{ family: 'inet', local: '192.168.1.5', scope: 'global' }] },
    { ifname: 'eth1', mtu: 9000, addr_info: [{ family: 'inet6', local: 'fd00::1' }, { family: 'inet', local: '10.9.0.5', scope: 'global' }] },
    { ifname: 'wg0', mtu: 1420 },
  ];
  assert.deepEqual(pickUnderlay(links, { nodeIp: '192.168.1.5' }), { name: 'eth0', address: '192.168.1.5', mtu: 1400 });
  assert.deepEqual(pickUnderlay(links, { nodeIp: '192.168.1.5', iface: 'eth1' }), { name: 'eth1', address: '10.9.0.5', mtu: 9000 });
  assert.deepEqual(pickUnderlay(links, { nodeIp: '203.0.113.9', defaultRouteDev: 'eth1' }), { name: 'eth1', address: '203.0.113.9', mtu: 9000 });
  assert.throws(() => pickUnderlay(links, { nodeIp: '192.168.1.5', iface: 'eth9' }), /--flannel-iface eth9: no such interface/);
  assert.throws(() => pickUnderlay(links, { nodeIp: '192.168.1.5', iface: 'wg0' }), /no IPv4 address/);
  // A node IP on loopback and no default route: no device pinned, Ethernet's MTU.
  assert.deepEqual(pickUnderlay(links, { nodeIp: '127.0.0.1' }), { name: '', address: '127.0.0.1', mtu: 1500 });
  // vxlan pods get the underlay's MTU less the encapsulation; host-gw pods the underlay's own.
  assert.equal(1400 - VXLAN_OVERHEAD, 1350);
});

test('flannel backend names as k3s spells them; others refused with the list', () => {
  for (const b of ['vxlan', 'host-gw', 'none']) assert.equal(parseFlannelBackend(b), b);
  assert.throws(() => parseFlannelBackend('wireguard-native'), /one of vxlan, host-gw, none/);
  assert.throws(() => parseFlannelBackend('hostgw'), /unknown backend "hostgw"/);
});

test('masquerade: traffic to other nodes\' pods keeps its source address', () => {
  const rules = masqueradeRules('10.42.0.0/24', ['10.42.1.0/24']);
  assert.deepEqual(rules.slice(0, 2).map((r) => r.slice(4, 6)), [['-d', '10.42.0.0/24'], ['-d', '10.42.1.0/24']]);
  assert.equal(rules.at(-1)!.at(-1), 'MASQUERADE');
});
