// The scheduling loop at scale against the real in-process API: 1,000 nodes and 5,000 pending pods
// (as ReplicaSet replicas with spreading to score), all bound, none twice, no node over capacity, with
// the node lifecycle and taint eviction loops following the same informers as they do in the server.
// Throughput is a benchmark's figure, not asserted here: bench/schedule.ts --workload pods measures it
// (goal: at least 500 pods/s on 2 cores; see docs/benchmarks.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';
import { startSchedulerController } from '../../src/controllers/scheduler-loop.js';
import { startNodeLifecycleController, startTaintEvictionController } from '../../src/controllers/node-lifecycle.js';
import { Resources } from '../../src/client/types.js';
import type { KObject } from '../../src/api/object.js';

const NODES = 1000;
const PODS = 5000;
const MAX_PODS_PER_NODE = 8;

async function inBatches(n: number, size: number, make: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += size) await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, j) => make(i + j)));
}

test(`binds ${PODS} pods onto ${NODES} nodes`, { timeout: 300_000 }, async (t) => {
  const env = await startControllerEnv(t);
  const { client } = env.api;
  await inBatches(NODES, 200, (i) => client.create(Resources.nodes, undefined, {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: `node-${i}`, labels: { 'kubernetes.io/hostname': `node-${i}`, 'kubernetes.io/arch': i % 2 ? 'arm' : 'arm64' } },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: String(MAX_PODS_PER_NODE) },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  }));
  const owners = Array.from({ length: 10 }, (_, i) => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `rs-${i}`, uid: `00000000-0000-0000-0000-00000000000${i}`, controller: true }));
  await inBatches(PODS, 250, (i) => client.create(Resources.pods, 'default', {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: `pod-${i}`, namespace: 'default', labels: { app: `app-${i % 10}` }, ownerReferences: [owners[i % 10]] },
    spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '100m', memory: '64Mi' } } }] },
  } as KObject));

  let bound = 0;
  const watch = client.watch(Resources.pods, 'default', (await client.list(Resources.pods, 'default', { limit: 1 })).resourceVersion, (e) => {
    if (e.type === 'MODIFIED' && (e.object as any).spec?.nodeName) bound++;
  });
  t.after(() => watch.stop());
  await env.run(startNodeLifecycleController);
  await env.run(startTaintEvictionController);
  await env.run((ctx) => startSchedulerController(ctx));
  await eventually(() => bound >= PODS, 240_000, `all ${PODS} pods bound (have ${bound})`);

  const perNode = new Map<string, number>();
  for (const p of (await client.list(Resources.pods, 'default')).items as any[]) {
    assert.ok(p.spec.nodeName, `${p.metadata.name} bound`);
    perNode.set(p.spec.nodeName, (perNode.get(p.spec.nodeName) ?? 0) + 1);
  }
  assert.ok(Math.max(...perNode.values()) <= MAX_PODS_PER_NODE, 'no node over its pod capacity');
  assert.ok(perNode.size >= PODS / MAX_PODS_PER_NODE, 'spread over the nodes');
  assert.equal(bound, PODS, 'each pod bound exactly once');
});
