// The overlay's view of other Nodes (issue 15): an informer with the peer-view transform keeps only
// name, resourceVersion, pod CIDR and flannel annotations, follows changes, and the backends find the
// same endpoints in it as in the whole Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import { Resources } from '../../src/client/types.js';
import { Informer } from '../../src/client/informer.js';
import type { KObject } from '../../src/api/object.js';
import { ANNOTATIONS, endpointOf, peerSignature, peerView } from '../../src/agent/network/backends/backend.js';
import { peersFrom } from '../../src/agent/network/backends/vxlan.js';

const node = (name: string, cidr: string, ip?: string): KObject => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: {
    name, labels: { 'kubernetes.io/hostname': name },
    annotations: {
      'node.alpha.kubernetes.io/ttl': '0',
      ...(ip ? { [ANNOTATIONS.backendType]: 'vxlan', [ANNOTATIONS.publicIp]: ip, [ANNOTATIONS.backendData]: '{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}', [ANNOTATIONS.subnetManager]: 'true' } : {}),
    },
  },
  spec: { podCIDR: cidr, podCIDRs: [cidr] },
  status: { capacity: { cpu: '4' }, images: [{ names: ['x'.repeat(2000)], sizeBytes: 1 }], nodeInfo: { machineID: 'm' } },
} as KObject);

test('peerView keeps what the backends read and drops the rest', () => {
  const full = node('a', '10.42.1.0/24', '192.0.2.1');
  const v = peerView(full);
  assert.deepEqual(v.metadata, { name: 'a', resourceVersion: undefined, annotations: Object.fromEntries(
    Object.values(ANNOTATIONS).map((k) => [k, full.metadata.annotations![k]])) });
  assert.deepEqual((v as any).spec, { podCIDR: '10.42.1.0/24' });
  assert.equal((v as any).status, undefined);
  assert.deepEqual(endpointOf(v, 'vxlan'), endpointOf(full, 'vxlan'));
  assert.deepEqual(peersFrom([v], 'self'), peersFrom([full], 'self'));
  assert.ok(JSON.stringify(v).length < JSON.stringify(full).length / 5);
  // A node with no flannel annotations keeps none (a hollow node, a node of another backend).
  assert.equal(peerView(node('h', '10.42.2.0/24')).metadata.annotations, undefined);
  // Only routing fields make signatures differ.
  assert.equal(peerSignature(peerView(full)), peerSignature(peerView({ ...full, status: {} } as KObject)));
  assert.notEqual(peerSignature(peerView(full)), peerSignature(peerView(node('a', '10.42.1.0/24', '192.0.2.9'))));
});

test('an informer with the peer-view transform caches views and follows changes', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.nodes, undefined, node('n1', '10.42.1.0/24', '192.0.2.1'));
  await client.create(Resources.nodes, undefined, node('n2', '10.42.2.0/24'));
  const inf = new Informer<KObject>({ client, resource: Resources.nodes, transform: peerView, backoff: { initialMs: 5, maxMs: 20 } });
  t.after(() => inf.stop());
  const updates: string[] = [];
  inf.addHandlers({ onUpdate: (o, n) => { if (peerSignature(o) !== peerSignature(n)) updates.push(String(n.metadata.name)); } });
  inf.start();
  await inf.waitForSync(2000);
  assert.equal((inf.get('n1') as any).status, undefined);
  assert.equal(inf.get('n1')!.metadata.labels, undefined);
  assert.ok(inf.get('n1')!.metadata.resourceVersion, 'the resourceVersion is kept for resuming');
  assert.ok(Object.isFrozen(inf.get('n1')));
  // A status heartbeat changes nothing that routes; a new public IP does.
  await client.patch(Resources.nodes, undefined, 'n1', 'merge', { status: { capacity: { cpu: '8' } } }, { subresource: 'status' });
  await client.patch(Resources.nodes, undefined, 'n2', 'merge', { metadata: { annotations: { [ANNOTATIONS.backendType]: 'vxlan', [ANNOTATIONS.publicIp]: '192.0.2.2' } } });
  const deadline = Date.now() + 3000;
  while (updates.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(updates, ['n2']);
  assert.equal(inf.get('n2')!.metadata.annotations?.[ANNOTATIONS.publicIp], '192.0.2.2');
});
