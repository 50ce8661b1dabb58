// The garbage collector against the real in-process API: Background, Foreground and Orphan deletion
// of a Deployment → ReplicaSet → Pods chain (built by hand, no workload controllers running),
// blockOwnerDeletion holding a foreground owner, partial ownership, dangling references, custom
// resources as owners, and convergence of a collector started after the owner was deleted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject, OwnerReference } from '../../src/api/object.js';
import { Resources, type ResourceRef } from '../../src/client/types.js';
import { startGarbageCollector } from '../../src/controllers/garbage-collector.js';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';
import { createWidgetCrd, WIDGETS } from '../helpers/crds.js';

const NS = 'default';

function ownerRef(o: KObject, block = true, controller = true): OwnerReference {
  return { apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata.name!, uid: o.metadata.uid!, controller, blockOwnerDeletion: block };
}

const labels = { app: 'web' };
const template = { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };

async function chain(env: ControllerEnv, name = 'web', podFinalizer?: string) {
  const c = env.api.client;
  const deploy = await c.create(Resources.deployments, NS, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
    spec: { replicas: 2, selector: { matchLabels: labels }, template },
  });
  const rs = await c.create(Resources.replicaSets, NS, {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: `${name}-abc`, ownerReferences: [ownerRef(deploy)] },
    spec: { replicas: 2, selector: { matchLabels: labels }, template },
  });
  const pods: KObject[] = [];
  for (const i of [1, 2]) {
    pods.push(await c.create(Resources.pods, NS, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `${name}-abc-${i}`, labels, ownerReferences: [ownerRef(rs)], ...(podFinalizer ? { finalizers: [podFinalizer] } : {}) },
      spec: template.spec,
    }));
  }
  return { deploy, rs, pods };
}

const exists = async (env: ControllerEnv, ref: ResourceRef, name: string) => (await env.api.client.get(ref, NS, name)) !== undefined;
const gone = (env: ControllerEnv, ref: ResourceRef, name: string) => async () => !(await exists(env, ref, name));

async function gcEnv(t: Parameters<typeof startControllerEnv>[0]) {
  const env = await startControllerEnv(t);
  await env.run((ctx) => startGarbageCollector(ctx, env.api.registry));
  return env;
}

test('background deletion of a Deployment removes its ReplicaSet and Pods after it', async (t) => {
  const env = await gcEnv(t);
  const { rs, pods } = await chain(env);
  const d = await env.api.client.delete(Resources.deployments, NS, 'web', { propagationPolicy: 'Background' });
  assert.equal(d.metadata.deletionTimestamp, undefined, 'the owner itself goes at once');
  await eventually(gone(env, Resources.replicaSets, rs.metadata.name!), 5000, 'ReplicaSet collected');
  for (const p of pods) await eventually(gone(env, Resources.pods, p.metadata.name!), 5000, `pod ${p.metadata.name} collected`);
});

test('foreground deletion keeps the owner until blocking dependents are gone, then removes it', async (t) => {
  const env = await gcEnv(t);
  const hold = 'test.skiff.io/hold';
  const { rs, pods } = await chain(env, 'web', hold);
  await env.api.client.delete(Resources.deployments, NS, 'web', { propagationPolicy: 'Foreground' });

  // The pods are asked to go (they carry a test finalizer, so they stay terminating)...
  for (const p of pods) {
    await eventually(async () => (await env.api.client.get(Resources.pods, NS, p.metadata.name!))?.metadata.deletionTimestamp, 5000, 'pod terminating');
  }
  // ...and hold the ReplicaSet, which holds the Deployment: both wait with foregroundDeletion.
  const heldRs = await env.api.client.get(Resources.replicaSets, NS, rs.metadata.name!);
  assert.ok(heldRs?.metadata.deletionTimestamp, 'ReplicaSet is being deleted');
  assert.deepEqual(heldRs?.metadata.finalizers, ['foregroundDeletion']);
  const heldDeploy = await env.api.client.get(Resources.deployments, NS, 'web');
  assert.ok(heldDeploy?.metadata.deletionTimestamp);
  assert.deepEqual(heldDeploy?.metadata.finalizers, ['foregroundDeletion']);

  for (const p of pods) await env.api.client.patch(Resources.pods, NS, p.metadata.name!, 'merge', { metadata: { finalizers: null } });
  await eventually(gone(env, Resources.replicaSets, rs.metadata.name!), 5000, 'ReplicaSet gone');
  await eventually(gone(env, Resources.deployments, 'web'), 5000, 'Deployment gone last');
});

test('dependents without blockOwnerDeletion do not hold a foreground owner', async (t) => {
  const env = await gcEnv(t);
  const c = env.api.client;
  const owner = await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner' } });
  await c.create(Resources.configMaps, NS, {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dep', finalizers: ['test.skiff.io/hold'], ownerReferences: [ownerRef(owner, false)] },
  });
  await c.delete(Resources.configMaps, NS, 'owner', { propagationPolicy: 'Foreground' });
  await eventually(gone(env, Resources.configMaps, 'owner'), 5000, 'owner gone although its dependent is still terminating');
  await eventually(async () => (await c.get(Resources.configMaps, NS, 'dep'))?.metadata.deletionTimestamp, 5000, 'the dependent is asked to go too');
});

test('orphan deletion removes the owner and leaves its dependents without the reference', async (t) => {
  const env = await gcEnv(t);
  const { rs, pods } = await chain(env);
  const d = await env.api.client.delete(Resources.deployments, NS, 'web', { propagationPolicy: 'Orphan' });
  assert.deepEqual(d.metadata.finalizers, ['orphan']);
  await eventually(gone(env, Resources.deployments, 'web'), 5000, 'Deployment gone');
  const left = await env.api.client.get(Resources.replicaSets, NS, rs.metadata.name!);
  assert.ok(left, 'ReplicaSet kept');
  assert.equal(left.metadata.ownerReferences, undefined, 'reference to the Deployment removed');
  assert.equal(left.metadata.deletionTimestamp, undefined);
  for (const p of pods) {
    const pod = await env.api.client.get(Resources.pods, NS, p.metadata.name!);
    assert.equal(pod?.metadata.ownerReferences?.[0]?.uid, rs.metadata.uid, 'pods still belong to the ReplicaSet');
  }
});

test('an object with one live owner only loses the reference to the dead one', async (t) => {
  const env = await gcEnv(t);
  const c = env.api.client;
  const a = await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } });
  const b = await c.create(Resources.secrets, NS, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b' } });
  await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared', ownerReferences: [ownerRef(a, false), ownerRef(b, false, false)] } });
  await c.delete(Resources.configMaps, NS, 'a');
  await eventually(async () => (await c.get(Resources.configMaps, NS, 'shared'))?.metadata.ownerReferences?.length === 1, 5000, 'dead reference removed');
  const shared = await c.get(Resources.configMaps, NS, 'shared');
  assert.equal(shared?.metadata.ownerReferences?.[0]?.uid, b.metadata.uid);
  await c.delete(Resources.secrets, NS, 'b');
  await eventually(gone(env, Resources.configMaps, 'shared'), 5000, 'collected once its last owner is gone');
});

test('references to owners that never existed, or to a recreated owner, are dangling', async (t) => {
  const env = await gcEnv(t);
  const c = env.api.client;
  await c.create(Resources.configMaps, NS, {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: 'orphaned', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'nope', uid: 'no-such-uid' }] },
  });
  const cur = await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner' } });
  await c.create(Resources.configMaps, NS, {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: 'stale', ownerReferences: [{ ...ownerRef(cur), uid: 'an-earlier-uid' }] },
  });
  await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kept', ownerReferences: [ownerRef(cur)] } });
  await eventually(gone(env, Resources.configMaps, 'orphaned'), 5000, 'dependent of a missing owner collected');
  await eventually(gone(env, Resources.configMaps, 'stale'), 5000, 'dependent of an earlier owner with the same name collected');
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(await exists(env, Resources.configMaps, 'kept'), 'dependent of the live owner kept');
});

test('custom resources are owners and dependents like any kind', async (t) => {
  const env = await gcEnv(t);
  const c = env.api.client;
  await createWidgetCrd(c);
  const widgets = WIDGETS;
  const w = await eventually(() => c.create(widgets, NS, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' } }), 5000, 'CRD served');
  await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'of-widget', ownerReferences: [ownerRef(w)] } });
  const cm = await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'widget-owner' } });
  await c.create(widgets, NS, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w2', ownerReferences: [ownerRef(cm)] } });

  await c.delete(widgets, NS, 'w1');
  await eventually(gone(env, Resources.configMaps, 'of-widget'), 5000, 'dependent of a custom resource collected');
  await c.delete(Resources.configMaps, NS, 'widget-owner');
  await eventually(async () => !(await c.get(widgets, NS, 'w2')), 5000, 'custom resource collected');
});

test('a collector started after the owner was deleted still converges', async (t) => {
  const env = await startControllerEnv(t);
  const { rs, pods } = await chain(env);
  await env.api.client.delete(Resources.deployments, NS, 'web', { propagationPolicy: 'Orphan' });
  await env.api.client.delete(Resources.replicaSets, NS, rs.metadata.name!, { propagationPolicy: 'Background' });
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(await exists(env, Resources.deployments, 'web'), 'nothing removes the orphan finalizer without a collector');
  await env.run((ctx) => startGarbageCollector(ctx, env.api.registry));
  await eventually(gone(env, Resources.deployments, 'web'), 5000, 'orphan finalizer handled after start');
  for (const p of pods) await eventually(gone(env, Resources.pods, p.metadata.name!), 5000, 'pods of the deleted ReplicaSet collected');
});
