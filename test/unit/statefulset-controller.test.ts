// The StatefulSet loop against the real in-process API: stable names, OrderedReady vs Parallel,
// claims from volumeClaimTemplates (kept on scale down), rolling update with partition, status.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import { startStatefulSetController, ordinalOf } from '../../src/controllers/statefulset/controller.js';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';

type Obj = Record<string, any>;

const waitFor = async <T>(fn: () => Promise<T | false | undefined>, ms: number, what: string): Promise<T> => (await eventually(fn, ms, what)) as T;

/**
 * The test's stand-in kubelet: pods become Running and Ready once `allow(pod)` says so. `order`
 * records the names in the order pods were first seen.
 */
function standInKubelet(t: TestContext, client: ApiClient, allow: (pod: Obj) => boolean = () => true) {
  const order: string[] = [];
  const pending = new Map<string, Obj>();
  const mark = (pod: Obj) => {
    const next = structuredClone(pod);
    next.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] };
    client.updateStatus(Resources.pods, 'default', next as KObject).catch(() => undefined);
  };
  const h = client.watch(Resources.pods, 'default', '0', (e) => {
    const pod = e.object as Obj;
    if (e.type === 'ADDED') order.push(pod.metadata.name);
    if (e.type === 'DELETED' || pod.metadata.deletionTimestamp) { pending.delete(pod.metadata.name); return; }
    if (pod.status?.phase === 'Running') return;
    if (allow(pod)) mark(pod); else pending.set(pod.metadata.name, pod);
  });
  t.after(() => h.stop());
  return {
    order,
    /** Lets held pods start now. */
    release() { for (const p of pending.values()) mark(p); pending.clear(); },
  };
}

function statefulSet(name: string, spec: Obj = {}): KObject {
  const { template: t = {}, ...rest } = spec;
  return {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name, namespace: 'default' },
    spec: {
      serviceName: name, replicas: 3,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }], ...t } },
      ...rest,
    },
  };
}

async function pods(c: ApiClient, app: string): Promise<Obj[]> {
  return ((await c.list(Resources.pods, 'default', { labelSelector: `app=${app}` })).items as Obj[])
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

async function start(t: TestContext): Promise<ControllerEnv> {
  const env = await startControllerEnv(t);
  await env.run((ctx) => startStatefulSetController(ctx));
  return env;
}

test('OrderedReady creates web-0, web-1, web-2 one at a time, each after the previous is Ready', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  let held = true;
  const kubelet = standInKubelet(t, c, (p) => !held || p.metadata.name !== 'web-1');
  await c.create(Resources.statefulSets, 'default', statefulSet('web', {
    volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
  }));
  await waitFor(async () => (await pods(c, 'web')).length === 2, 5000, 'web-0 and web-1');
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual((await pods(c, 'web')).map((p) => p.metadata.name), ['web-0', 'web-1'], 'web-2 waits for web-1 to be Ready');
  held = false;
  kubelet.release();
  const all = await waitFor(async () => { const p = await pods(c, 'web'); return p.length === 3 && p; }, 5000, 'three pods');
  assert.deepEqual(kubelet.order.filter((n) => n.startsWith('web-')), ['web-0', 'web-1', 'web-2']);

  const p1 = all[1]!;
  assert.equal(p1.spec.hostname, 'web-1');
  assert.equal(p1.spec.subdomain, 'web');
  assert.equal(p1.metadata.labels['statefulset.kubernetes.io/pod-name'], 'web-1');
  assert.equal(p1.metadata.labels['apps.kubernetes.io/pod-index'], '1');
  assert.ok(p1.metadata.labels['controller-revision-hash']);
  assert.deepEqual(p1.spec.volumes.find((v: Obj) => v.name === 'data'), { name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } });
  const claims = ((await c.list(Resources.persistentVolumeClaims, 'default')).items as Obj[]).map((x) => x.metadata.name).sort();
  assert.deepEqual(claims, ['data-web-0', 'data-web-1', 'data-web-2']);
  const claim = await c.get(Resources.persistentVolumeClaims, 'default', 'data-web-0') as Obj;
  assert.equal(claim.metadata.labels.app, 'web');

  const s = await waitFor(async () => {
    const x = await c.get(Resources.statefulSets, 'default', 'web') as Obj;
    return x.status?.readyReplicas === 3 && x;
  }, 5000, 'status');
  assert.equal(s.status.replicas, 3);
  assert.equal(s.status.availableReplicas, 3);
  assert.equal(s.status.currentReplicas, 3);
  assert.equal(s.status.updatedReplicas, 3);
  assert.equal(s.status.currentRevision, s.status.updateRevision);
  assert.equal(s.status.updateRevision, `web-${p1.metadata.labels['controller-revision-hash']}`);
  assert.equal(s.status.observedGeneration, 1);

  // Scale down: highest ordinal goes first; claims stay (whenScaled defaults to Retain).
  const down = structuredClone(s);
  down.spec.replicas = 1;
  delete down.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.statefulSets, 'default', down as KObject);
  await waitFor(async () => (await pods(c, 'web')).length === 1, 5000, 'scale down');
  assert.equal((await pods(c, 'web'))[0]!.metadata.name, 'web-0');
  assert.equal(((await c.list(Resources.persistentVolumeClaims, 'default')).items).length, 3);
});

test('Parallel creates every pod at once; a failed pod is recreated under its name', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  await c.create(Resources.statefulSets, 'default', statefulSet('par', { podManagementPolicy: 'Parallel', replicas: 4 }));
  const all = await waitFor(async () => { const p = await pods(c, 'par'); return p.length === 4 && p; }, 5000, 'four pods without readiness');
  assert.deepEqual(all.map((p) => ordinalOf('par', p.metadata.name)), [0, 1, 2, 3]);

  const victim = structuredClone(all[2]!);
  victim.status = { phase: 'Failed' };
  await c.updateStatus(Resources.pods, 'default', victim as KObject);
  await waitFor(async () => {
    const p = await c.get(Resources.pods, 'default', 'par-2') as Obj | undefined;
    return p && p.metadata.uid !== victim.metadata.uid && p.status?.phase !== 'Failed';
  }, 5000, 'par-2 recreated');
});

test('RollingUpdate replaces from the highest ordinal down to the partition; status tracks revisions', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  standInKubelet(t, c);
  await c.create(Resources.statefulSets, 'default', statefulSet('db', {
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } },
  }));
  const first = await waitFor(async () => {
    const x = await c.get(Resources.statefulSets, 'default', 'db') as Obj;
    return x.status?.readyReplicas === 3 && x;
  }, 5000, 'ready');
  const deletions: string[] = [];
  const h = c.watch(Resources.pods, 'default', first.metadata.resourceVersion, (e) => { if (e.type === 'DELETED') deletions.push(e.object.metadata.name!); });
  t.after(() => h.stop());

  const next = structuredClone(first);
  next.spec.template.spec.containers[0].image = 'busybox:2';
  delete next.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.statefulSets, 'default', next as KObject);
  const s = await waitFor(async () => {
    const x = await c.get(Resources.statefulSets, 'default', 'db') as Obj;
    return x.status?.observedGeneration === 2 && x.status.updatedReplicas === 2 && x.status.readyReplicas === 3 && x;
  }, 8000, 'partitioned rollout');
  const images = (await pods(c, 'db')).map((p) => p.spec.containers[0].image);
  assert.deepEqual(images, ['busybox:1', 'busybox:2', 'busybox:2']);
  assert.deepEqual(deletions, ['db-2', 'db-1']);
  assert.equal(s.status.currentReplicas, 1);
  assert.notEqual(s.status.currentRevision, s.status.updateRevision, 'the partition holds the rollout');

  // Partition 0 finishes it; the update revision becomes current.
  const all = structuredClone(s);
  all.spec.updateStrategy.rollingUpdate.partition = 0;
  delete all.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.statefulSets, 'default', all as KObject);
  const done = await waitFor(async () => {
    const x = await c.get(Resources.statefulSets, 'default', 'db') as Obj;
    return x.status?.updatedReplicas === 3 && x.status.readyReplicas === 3 && x.status.currentRevision === x.status.updateRevision && x;
  }, 8000, 'full rollout');
  assert.equal(done.status.currentReplicas, 3);
  const revs = ((await c.list(Resources.controllerRevisions, 'default')).items as Obj[]).map((r) => r.revision).sort();
  assert.deepEqual(revs, [1, 2]);
});

test('whenScaled: Delete hands a removed pod\'s claims to the pod; whenDeleted: Delete makes the set own them', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  standInKubelet(t, c);
  await c.create(Resources.statefulSets, 'default', statefulSet('q', {
    replicas: 2,
    persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' },
    volumeClaimTemplates: [{ metadata: { name: 'd' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
  }));
  const s = await waitFor(async () => {
    const x = await c.get(Resources.statefulSets, 'default', 'q') as Obj;
    return x.status?.readyReplicas === 2 && x;
  }, 5000, 'ready');
  const claim = await c.get(Resources.persistentVolumeClaims, 'default', 'd-q-1') as Obj;
  assert.deepEqual(claim.metadata.ownerReferences.map((r: Obj) => r.kind), ['StatefulSet']);
  const pod1 = await c.get(Resources.pods, 'default', 'q-1') as Obj;
  const down = structuredClone(s);
  down.spec.replicas = 1;
  delete down.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.statefulSets, 'default', down as KObject);
  await waitFor(async () => (await pods(c, 'q')).length === 1, 5000, 'scale down');
  const released = await c.get(Resources.persistentVolumeClaims, 'default', 'd-q-1') as Obj;
  assert.ok(released.metadata.ownerReferences.some((r: Obj) => r.kind === 'Pod' && r.uid === pod1.metadata.uid));
});
