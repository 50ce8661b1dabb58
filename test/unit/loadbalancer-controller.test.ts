// The load-balancer loop against the real in-process API: ServiceLB for Services no pool serves,
// the pools taking a Service over when they appear (never both), loadBalancerClass left alone,
// IPAddressPool status counts through the installed CRDs, --disable-servicelb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources } from '../../src/client/types.js';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';
import { startLoadBalancerController } from '../../src/controllers/loadbalancer/controller.js';
import { IP_ADDRESS_POOLS, metallbCrds } from '../../src/controllers/loadbalancer/crds.js';

async function setup(t: any, opts: { disableServiceLb?: boolean } = {}) {
  const env = await startControllerEnv(t, {}, { namespaces: ['default', 'kube-system', 'metallb-system'] });
  const { client } = env.api;
  for (const crd of metallbCrds()) await client.create(Resources.customResourceDefinitions, undefined, crd);
  // The CRDs are served once established (asynchronously).
  await eventually(async () => (await client.list(IP_ADDRESS_POOLS, 'metallb-system').catch(() => undefined)) !== undefined, 10_000, 'the IPAddressPool CRD served');
  const node = await client.create(Resources.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } } as KObject);
  await client.updateStatus(Resources.nodes, undefined, {
    ...node, status: { conditions: [{ type: 'Ready', status: 'True' }], addresses: [{ type: 'InternalIP', address: '192.0.2.10' }] },
  } as KObject);
  await env.run((ctx) => startLoadBalancerController(ctx, opts));
  return env;
}

const lbService = (name: string, extra: Record<string, unknown> = {}): KObject => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }], ...extra },
} as KObject);

const ingress = async (client: any, name: string): Promise<string[]> =>
  ((await client.get(Resources.services, 'default', name))?.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip);

test('ServiceLB serves until a pool exists; then the pool takes over; loadBalancerClass is left alone', async (t) => {
  const { api: { client } } = await setup(t);
  await client.create(Resources.services, 'default', lbService('a'));
  await client.create(Resources.services, 'default', lbService('other', { loadBalancerClass: 'example.com/lb' }));
  await eventually(async () => (await ingress(client, 'a')).join() === '192.0.2.10', 10_000, 'ServiceLB node address');
  await client.create(IP_ADDRESS_POOLS, 'metallb-system', {
    apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p', namespace: 'metallb-system' },
    spec: { addresses: ['198.51.100.0/30'], avoidBuggyIPs: true },
  } as KObject);
  await eventually(async () => (await ingress(client, 'a')).join() === '198.51.100.1', 10_000, 'pool address instead of the node address');
  await eventually(async () => {
    const st = (await client.get(IP_ADDRESS_POOLS, 'metallb-system', 'p') as any)?.status;
    return st?.assignedIPv4 === 1 && st?.availableIPv4 === 2;
  }, 10_000, 'pool status counts');
  assert.deepEqual(await ingress(client, 'other'), []);
  // No longer a LoadBalancer: the pool address is withdrawn (and counted free again).
  await client.patch(Resources.services, 'default', 'a', 'merge', { spec: { type: 'NodePort', allocateLoadBalancerNodePorts: null } });
  await eventually(async () => (await ingress(client, 'a')).length === 0, 10_000, 'ingress withdrawn');
  await eventually(async () => (await client.get(IP_ADDRESS_POOLS, 'metallb-system', 'p') as any)?.status?.assignedIPv4 === 0, 10_000, 'pool count back to 0');
});

test('--disable-servicelb: a Service no pool serves gets no address', async (t) => {
  const { api: { client } } = await setup(t, { disableServiceLb: true });
  await client.create(Resources.services, 'default', lbService('a'));
  await client.create(IP_ADDRESS_POOLS, 'metallb-system', {
    apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'team', namespace: 'metallb-system' },
    spec: { addresses: ['198.51.100.8/29'], serviceAllocation: { namespaces: ['team'] } },
  } as KObject);
  await client.create(Resources.services, 'default', lbService('b', { loadBalancerIP: '198.51.100.9' }));
  // b asks for an address of a pool that does not serve its namespace: no pool serves it, and no ServiceLB.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await ingress(client, 'a'), []);
  assert.deepEqual(await ingress(client, 'b'), []);
});
