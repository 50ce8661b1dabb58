// Which nodes the overlay routes to, from their flannel annotations, and what this node publishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointAnnotations, gatewayOf, peersFrom } from '../../src/agent/network/overlay.js';
import { masqueradeRules } from '../../src/agent/network/masquerade.js';

const node = (name: string, podCIDR: string | undefined, annotations: Record<string, string>) =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name, annotations }, spec: { podCIDR } });

test('peers: other nodes with a vxlan endpoint and a pod CIDR; malformed ones skipped', () => {
  const good = endpointAnnotations('AA:bb:cc:dd:ee:01', '192.168.1.2');
  const peers = peersFrom([
    node('self', '10.42.0.0/24', endpointAnnotations('aa:bb:cc:dd:ee:00', '192.168.1.1')),
    node('b', '10.42.1.0/24', good),
    node('no-cidr', undefined, good),
    node('host-gw', '10.42.2.0/24', { ...good, 'flannel.alpha.coreos.com/backend-type': 'host-gw' }),
    node('bad-mac', '10.42.3.0/24', { ...good, 'flannel.alpha.coreos.com/backend-data': '{"VtepMAC":"nope"}' }),
    node('bad-json', '10.42.4.0/24', { ...good, 'flannel.alpha.coreos.com/backend-data': '{' }),
  ], 'self');
  assert.deepEqual(peers, [{ name: 'b', podCidr: '10.42.1.0/24', publicIp: '192.168.1.2', vtepMac: 'aa:bb:cc:dd:ee:01' }]);
  assert.equal(gatewayOf('10.42.1.0/24'), '10.42.1.0');
  assert.deepEqual(JSON.parse(good['flannel.alpha.coreos.com/backend-data']!), { VNI: 1, VtepMAC: 'AA:bb:cc:dd:ee:01' });
});

test('masquerade: traffic to other nodes\' pods keeps its source address', () => {
  const rules = masqueradeRules('10.42.0.0/24', ['10.42.1.0/24']);
  assert.deepEqual(rules.slice(0, 2).map((r) => r.slice(4, 6)), [['-d', '10.42.0.0/24'], ['-d', '10.42.1.0/24']]);
  assert.equal(rules.at(-1)!.at(-1), 'MASQUERADE');
});
