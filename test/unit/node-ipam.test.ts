import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subnetAt, startNodeIpamController } from '../../src/controllers/node-ipam.js';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';
import { Resources } from '../../src/client/types.js';

test('subnets of the cluster CIDR', () => {
  assert.equal(subnetAt('10.42.0.0/16', 24, 0), '10.42.0.0/24');
  assert.equal(subnetAt('10.42.0.0/16', 24, 5), '10.42.5.0/24');
  assert.equal(subnetAt('10.42.0.0/16', 24, 255), '10.42.255.0/24');
  assert.equal(subnetAt('10.42.0.0/16', 24, 256), undefined);
});

test('every node gets its own pod CIDR, and a freed one is reused', async (t) => {
  const env = await startControllerEnv(t);
  await env.run((ctx) => startNodeIpamController(ctx, { clusterCidr: '10.42.0.0/16', nodeMaskSize: 24 }));
  const node = (name: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
  for (const n of ['a', 'b', 'c']) await env.api.client.create(Resources.nodes, undefined, node(n));
  const cidrs = await eventually(async () => {
    const list = (await env.api.client.list(Resources.nodes)).items as any[];
    const got = list.map((n) => n.spec?.podCIDR).filter(Boolean);
    return got.length === 3 ? got : undefined;
  }, 5000, 'three pod CIDRs');
  assert.equal(new Set(cidrs).size, 3);
  const b = (await env.api.client.get(Resources.nodes, undefined, 'b')) as any;
  await env.api.client.delete(Resources.nodes, undefined, 'b');
  await env.api.client.create(Resources.nodes, undefined, node('d'));
  const d = await eventually(async () => ((await env.api.client.get(Resources.nodes, undefined, 'd')) as any)?.spec?.podCIDR, 5000, 'd gets a CIDR');
  assert.equal(d, b.spec.podCIDR);
});
