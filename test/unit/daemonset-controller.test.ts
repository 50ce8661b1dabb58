// The DaemonSet loop against the real in-process API: eligible nodes (selector, taints vs the default
// daemon tolerations), pods pinned by node affinity, status, rolling update with ControllerRevisions,
// OnDelete, and nodes coming and going.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import { startDaemonSetController, targetNode, pinToNode } from '../../src/controllers/daemonset/controller.js';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';

type Obj = Record<string, any>;

/** `eventually` for polls that answer false until they answer the value. */
const waitFor = async <T>(fn: () => Promise<T | false | undefined>, ms: number, what: string): Promise<T> => (await eventually(fn, ms, what)) as T;

/** The test's stand-in kubelet: every live pod it sees becomes Running and Ready. */
function standInKubelet(t: TestContext, client: ApiClient): void {
  const h = client.watch(Resources.pods, 'default', '0', (e) => {
    const pod = e.object as Obj;
    if (e.type === 'DELETED' || pod.metadata.deletionTimestamp || pod.status?.phase === 'Running') return;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const next = structuredClone(pod);
    next.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }] };
    client.updateStatus(Resources.pods, 'default', next as KObject).catch(() => undefined);
  });
  t.after(() => h.stop());
}

async function node(client: ApiClient, name: string, labels: Record<string, string> = {}, taints: Obj[] = []): Promise<void> {
  await client.create(Resources.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, spec: taints.length ? { taints } : {} });
}

function daemonSet(name: string, spec: Obj = {}): KObject {
  const { template: t = {}, ...rest } = spec;
  return {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name, namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }], ...t } },
      ...rest,
    },
  };
}

async function podsOf(env: ControllerEnv, app: string): Promise<Obj[]> {
  return (await env.ctx.client.list(Resources.pods, 'default', { labelSelector: `app=${app}` })).items as Obj[];
}

async function start(t: TestContext): Promise<ControllerEnv> {
  const env = await startControllerEnv(t);
  await env.run((ctx) => startDaemonSetController(ctx));
  return env;
}

test('one pinned pod per eligible node: nodeSelector and taints decide, default tolerations added', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  await node(c, 'edge-1', { role: 'edge' });
  await node(c, 'edge-2', { role: 'edge' }, [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }]);
  await node(c, 'core-1', {});
  // Conditions-style taints are tolerated by every daemon pod.
  await node(c, 'edge-3', { role: 'edge' }, [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }]);
  await c.create(Resources.daemonSets, 'default', daemonSet('agent', { template: { nodeSelector: { role: 'edge' } } }));

  const pods = await waitFor(async () => { const p = await podsOf(env, 'agent'); return p.length === 2 && p; }, 5000, 'two daemon pods');
  assert.deepEqual(pods.map((p) => targetNode(p as KObject)).sort(), ['edge-1', 'edge-3']);
  const pod = pods[0]!;
  assert.match(pod.metadata.name, /^agent-[a-z0-9]{5}$/);
  assert.equal(pod.metadata.ownerReferences[0].kind, 'DaemonSet');
  assert.equal(pod.metadata.ownerReferences[0].controller, true);
  assert.ok(pod.metadata.labels['controller-revision-hash']);
  assert.equal(pod.metadata.labels['pod-template-generation'], '1');
  const term = pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0];
  assert.deepEqual(term.matchFields, [{ key: 'metadata.name', operator: 'In', values: [targetNode(pod as KObject)] }]);
  const keys = pod.spec.tolerations.map((x: Obj) => `${x.key}:${x.effect}`).sort();
  assert.deepEqual(keys, [
    'node.kubernetes.io/disk-pressure:NoSchedule', 'node.kubernetes.io/memory-pressure:NoSchedule',
    'node.kubernetes.io/not-ready:NoExecute', 'node.kubernetes.io/pid-pressure:NoSchedule',
    'node.kubernetes.io/unreachable:NoExecute', 'node.kubernetes.io/unschedulable:NoSchedule',
  ]);

  const ds = await waitFor(async () => {
    const d = await c.get(Resources.daemonSets, 'default', 'agent') as Obj;
    return d.status?.desiredNumberScheduled === 2 && d.status.currentNumberScheduled === 2 && d.status.observedGeneration === 1 && d;
  }, 5000, 'status');
  assert.equal(ds.status.numberReady, 0);
  assert.equal(ds.status.numberMisscheduled, 0);
  const revs = (await c.list(Resources.controllerRevisions, 'default')).items as Obj[];
  assert.equal(revs.length, 1);
  assert.equal(revs[0].revision, 1);
  assert.equal(revs[0].metadata.name, `agent-${pod.metadata.labels['controller-revision-hash']}`);
  assert.equal(revs[0].data.spec.template.$patch, 'replace');

  // A node joining the selector gets a pod; one leaving it loses its pod.
  await node(c, 'edge-4', { role: 'edge' });
  const n1 = structuredClone(await c.get(Resources.nodes, undefined, 'edge-1')) as Obj;
  n1.metadata.labels = {};
  await c.update(Resources.nodes, undefined, n1 as KObject);
  await eventually(async () => {
    const nodes = (await podsOf(env, 'agent')).filter((p) => !p.metadata.deletionTimestamp).map((p) => targetNode(p as KObject)).sort();
    return JSON.stringify(nodes) === JSON.stringify(['edge-3', 'edge-4']);
  }, 5000, 'pods to follow the nodes');
});

test('status counts ready pods; a rolling update replaces pods one at a time and records revisions', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  standInKubelet(t, c);
  for (const n of ['a', 'b', 'c']) await node(c, n);
  await c.create(Resources.daemonSets, 'default', daemonSet('log'));
  await eventually(async () => {
    const d = await c.get(Resources.daemonSets, 'default', 'log') as Obj;
    return d.status?.numberReady === 3 && d.status.numberAvailable === 3 && d.status.updatedNumberScheduled === 3;
  }, 5000, 'three ready');
  const before = new Set((await podsOf(env, 'log')).map((p) => p.metadata.name));

  // Watch how many daemons are missing at once while the update runs.
  let worst = 0;
  let replayed = false;
  const live = new Map<string, Obj>();
  const h = c.watch(Resources.pods, 'default', '0', (e) => {
    const p = e.object as Obj;
    if (e.type === 'DELETED' || p.metadata.deletionTimestamp) live.delete(p.metadata.name); else live.set(p.metadata.name, p);
    const ready = [...live.values()].filter((x) => x.status?.conditions?.some((k: Obj) => k.type === 'Ready' && k.status === 'True')).length;
    if (replayed) worst = Math.max(worst, 3 - ready);
  });
  replayed = true; // the in-process watch replays current pods synchronously, before returning
  t.after(() => h.stop());

  const ds = structuredClone(await c.get(Resources.daemonSets, 'default', 'log')) as Obj;
  ds.spec.template.spec.containers[0].image = 'busybox:2';
  delete ds.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.daemonSets, 'default', ds as KObject);
  const done = await waitFor(async () => {
    const d = await c.get(Resources.daemonSets, 'default', 'log') as Obj;
    const pods = await podsOf(env, 'log');
    return d.status?.observedGeneration === 2 && d.status.updatedNumberScheduled === 3 && d.status.numberAvailable === 3
      && pods.length === 3 && pods.every((p) => p.spec.containers[0].image === 'busybox:2') && pods;
  }, 8000, 'the rollout');
  assert.ok(done.every((p) => !before.has(p.metadata.name)));
  assert.ok(worst <= 1, `at most one daemon unavailable at a time (saw ${worst})`);
  const revs = ((await c.list(Resources.controllerRevisions, 'default')).items as Obj[]).sort((a, b) => a.revision - b.revision);
  assert.deepEqual(revs.map((r) => r.revision), [1, 2]);
  assert.equal(revs[1].metadata.labels['controller-revision-hash'], done[0]!.metadata.labels['controller-revision-hash']);

  // Back to the first template (kubectl rollout undo): the old revision is reused and renumbered.
  const back = structuredClone(await c.get(Resources.daemonSets, 'default', 'log')) as Obj;
  back.spec.template.spec.containers[0].image = 'busybox:1';
  delete back.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.daemonSets, 'default', back as KObject);
  await eventually(async () => {
    const rs = (await c.list(Resources.controllerRevisions, 'default')).items as Obj[];
    const pods = await podsOf(env, 'log');
    return rs.length === 2 && rs.find((r) => r.metadata.name === revs[0].metadata.name)?.revision === 3
      && pods.length === 3 && pods.every((p) => p.metadata.labels['controller-revision-hash'] === revs[0].metadata.labels['controller-revision-hash']);
  }, 8000, 'the rollback');
});

test('maxSurge starts the new pod beside the old one; OnDelete waits for deletions', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  standInKubelet(t, c);
  await node(c, 'a');
  await node(c, 'b');
  await c.create(Resources.daemonSets, 'default', daemonSet('surge', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }));
  await c.create(Resources.daemonSets, 'default', daemonSet('manual', { updateStrategy: { type: 'OnDelete' } }));
  await eventually(async () => (await podsOf(env, 'surge')).length === 2 && (await podsOf(env, 'manual')).length === 2, 5000, 'pods');
  await eventually(async () => ((await c.get(Resources.daemonSets, 'default', 'surge')) as Obj).status?.numberAvailable === 2, 5000, 'surge ready');

  // With surge, some node must hold an old and a new pod at once; without it that never happens.
  let sawTwoOnANode = false;
  const live = new Map<string, string>();
  const h = c.watch(Resources.pods, 'default', '0', (e) => {
    const p = e.object as Obj;
    if (p.metadata.labels?.app !== 'surge') return;
    if (e.type === 'DELETED' || p.metadata.deletionTimestamp) live.delete(p.metadata.name); else live.set(p.metadata.name, targetNode(p as KObject)!);
    const nodes = [...live.values()];
    if (new Set(nodes).size < nodes.length) sawTwoOnANode = true;
  });
  t.after(() => h.stop());
  for (const name of ['surge', 'manual']) {
    const ds = structuredClone(await c.get(Resources.daemonSets, 'default', name)) as Obj;
    ds.spec.template.spec.containers[0].image = 'busybox:2';
    delete ds.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
    await c.update(Resources.daemonSets, 'default', ds as KObject);
  }
  await eventually(async () => {
    const pods = (await podsOf(env, 'surge')).filter((p) => !p.metadata.deletionTimestamp);
    return pods.length === 2 && pods.every((p) => p.spec.containers[0].image === 'busybox:2');
  }, 8000, 'surge rollout');
  assert.ok(sawTwoOnANode, 'a new pod ran beside an old one');

  // OnDelete: nothing moves until a pod is deleted; its replacement has the new template.
  const manual = await podsOf(env, 'manual');
  assert.ok(manual.every((p) => p.spec.containers[0].image === 'busybox:1'));
  await c.delete(Resources.pods, 'default', manual[0]!.metadata.name);
  await eventually(async () => {
    const pods = await podsOf(env, 'manual');
    return pods.length === 2 && pods.filter((p) => p.spec.containers[0].image === 'busybox:2').length === 1;
  }, 5000, 'one replaced pod');
  const d = await waitFor(async () => {
    const x = await c.get(Resources.daemonSets, 'default', 'manual') as Obj;
    return x.status?.updatedNumberScheduled === 1 && x;
  }, 5000, 'OnDelete status');
  assert.equal(d.status.desiredNumberScheduled, 2);
});

test('pinToNode keeps match expressions and replaces matchFields in every term', () => {
  const a = pinToNode({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
    { matchExpressions: [{ key: 'arch', operator: 'In', values: ['arm64'] }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['x'] }] },
  ] } } }, 'n1');
  assert.deepEqual(a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [
    { matchExpressions: [{ key: 'arch', operator: 'In', values: ['arm64'] }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
  ]);
  assert.deepEqual(pinToNode(undefined, 'n2').nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
    [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n2'] }] }]);
});
