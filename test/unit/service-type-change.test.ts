// A Service's type change, as Kubernetes' service registry handles it: fields of the old type the
// user left as they were are dropped (nodePorts, externalTrafficPolicy, allocateLoadBalancerNodePorts),
// allocations the new type still needs are kept, and a field the user set for a type that cannot
// carry it is still refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import { Resources } from '../../src/client/types.js';

test('LoadBalancer → ClusterIP drops its nodePorts; → NodePort allocates; LoadBalancer → NodePort keeps them', async (t) => {
  const { client } = await startLocalApi(t);
  const lb = await client.create(Resources.services, 'default', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 's' },
    spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { a: 'b' }, ports: [{ port: 80 }] },
  }) as any;
  const lbPort = lb.spec.ports[0].nodePort as number;
  assert.ok(lbPort >= 30000);

  const cip = await client.patch(Resources.services, 'default', 's', 'merge', { spec: { type: 'ClusterIP' } }) as any;
  assert.equal(cip.spec.ports[0].nodePort, undefined);
  assert.equal(cip.spec.externalTrafficPolicy, undefined);
  assert.equal(cip.spec.allocateLoadBalancerNodePorts, undefined);
  assert.equal(cip.spec.clusterIP, lb.spec.clusterIP, 'the ClusterIP stays');

  const np = await client.patch(Resources.services, 'default', 's', 'merge', { spec: { type: 'NodePort' } }) as any;
  assert.ok(np.spec.ports[0].nodePort >= 30000);
  assert.equal(np.spec.externalTrafficPolicy, 'Cluster');

  const lb2 = await client.patch(Resources.services, 'default', 's', 'merge', { spec: { type: 'LoadBalancer' } }) as any;
  assert.equal(lb2.spec.ports[0].nodePort, np.spec.ports[0].nodePort, 'NodePort → LoadBalancer keeps the port');
  const np2 = await client.patch(Resources.services, 'default', 's', 'merge', { spec: { type: 'NodePort' } }) as any;
  assert.equal(np2.spec.ports[0].nodePort, np.spec.ports[0].nodePort, 'LoadBalancer → NodePort keeps the port');
  assert.equal(np2.spec.allocateLoadBalancerNodePorts, undefined);
});

test('a nodePort the user sets while switching to ClusterIP is refused', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.services, 'default', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { type: 'NodePort', selector: { a: 'b' }, ports: [{ port: 80 }] },
  });
  await assert.rejects(
    client.patch(Resources.services, 'default', 's', 'merge', { spec: { type: 'ClusterIP', ports: [{ port: 80, nodePort: 31999 }] } }),
    (err: any) => err.code === 422 && /nodePort: Forbidden: may not be used when `type` is 'ClusterIP'/.test(err.message),
  );
});
