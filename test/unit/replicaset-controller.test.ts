// The ReplicaSet controller against the real in-process API: replica counts, ownership (adopt and
// release), scale-down order, status, expectations across a restart, and its pure helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources } from '../../src/client/types.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import { podsToDelete, replicaSetStatus } from '../../src/controllers/replicaset.js';
import { startReplicaSetController } from '../../src/controllers/replicaset/controller.js';
import { Expectations } from '../../src/controllers/expectations.js';
import { slowStartBatch } from '../../src/controllers/slow-start.js';
import { eventually, startControllerEnv, type ControllerEnv } from '../helpers/controller-env.js';
import { startStandInKubelet } from './replicaset-stand-in-kubelet.js';


type Obj = KObject & Record<string, any>;

/** eventually(), typed for the falsy-until-ready predicates these tests poll. */
const until = <T>(fn: () => Promise<T | false | undefined | null>, ms?: number, what?: string): Promise<T> =>
  eventually(fn, ms, what) as Promise<T>;

function replicaSet(name: string, replicas: number, extra: Record<string, any> = {}): Obj {
  return {
    apiVersion: 'apps/v1', kind: 'ReplicaSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      ...extra,
    },
  };
}

async function podsOf(env: ControllerEnv, app: string): Promise<Obj[]> {
  const { items } = await env.api.client.list<Obj>(Resources.pods, 'default', { labelSelector: `app=${app}` });
  return items.filter((p) => !p.metadata.deletionTimestamp);
}

async function rsStatus(env: ControllerEnv, name: string): Promise<Record<string, any>> {
  return (await env.api.client.get<Obj>(Resources.replicaSets, 'default', name))?.status ?? {};
}

test('creates owned pods named after the set up to spec.replicas and reports them ready', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(startReplicaSetController);
  const rs = await env.api.client.create<Obj>(Resources.replicaSets, 'default', replicaSet('web', 3));

  const pods = await until(async () => { const p = await podsOf(env, 'web'); return p.length === 3 && p; });
  for (const p of pods) {
    assert.match(p.metadata.name!, /^web-[a-z0-9]{5}$/);
    assert.deepEqual(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  }
  const status = await until(async () => { const s = await rsStatus(env, 'web'); return s.availableReplicas === 3 && s; });
  assert.deepEqual({ ...status }, { replicas: 3, fullyLabeledReplicas: 3, readyReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
  // Settled: nothing more is created.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await podsOf(env, 'web')).length, 3);
});

test('scaling down deletes not-ready pods before ready ones', async (t) => {
  const env = await startControllerEnv(t);
  const kubelet = startStandInKubelet(t, env.api.client);
  await env.run(startReplicaSetController);
  await env.api.client.create(Resources.replicaSets, 'default', replicaSet('api', 2));
  await until(async () => (await rsStatus(env, 'api')).readyReplicas === 2);
  kubelet.hold(() => true);
  await env.api.client.patch(Resources.replicaSets, 'default', 'api', 'merge', { spec: { replicas: 4 } });
  await until(async () => (await podsOf(env, 'api')).length === 4);
  await env.api.client.patch(Resources.replicaSets, 'default', 'api', 'merge', { spec: { replicas: 2 } });
  const left = await until(async () => { const p = await podsOf(env, 'api'); return p.length === 2 && p; });
  for (const p of left) assert.ok(p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'), `${p.metadata.name} should be a ready survivor`);
});

test('adopts a matching orphan instead of creating, and releases a pod whose labels stop matching', async (t) => {
  const env = await startControllerEnv(t);
  await env.api.client.create(Resources.pods, 'default', {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'orphan', namespace: 'default', labels: { app: 'db' } },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
  });
  await env.run(startReplicaSetController);
  const rs = await env.api.client.create<Obj>(Resources.replicaSets, 'default', replicaSet('db', 2));
  await until(async () => (await podsOf(env, 'db')).length === 2);
  const orphan = await env.api.client.get<Obj>(Resources.pods, 'default', 'orphan');
  assert.equal(orphan?.metadata.ownerReferences?.[0]?.uid, rs.metadata.uid);

  await env.api.client.patch(Resources.pods, 'default', 'orphan', 'merge', { metadata: { labels: { app: 'other' } } });
  const released = await until(async () => {
    const p = await env.api.client.get<Obj>(Resources.pods, 'default', 'orphan');
    return p && !(p.metadata.ownerReferences ?? []).length && p;
  });
  assert.equal(released.metadata.labels?.app, 'other');
  await until(async () => (await podsOf(env, 'db')).length === 2, 10_000, 'a replacement for the released pod');
});

test('a restarted controller (fresh expectations, fresh caches) never duplicates pods', async (t) => {
  const env = await startControllerEnv(t);
  const first = await env.run(startReplicaSetController);
  await env.api.client.create(Resources.replicaSets, 'default', replicaSet('batch', 20));
  await until(async () => (await podsOf(env, 'batch')).length >= 3);
  await first.stop();

  const informers = new InformerFactory(env.api.client);
  t.after(() => informers.stop());
  const second = startReplicaSetController({ ...env.ctx, informers });
  t.after(() => second.stop());
  informers.start();
  await until(async () => (await podsOf(env, 'batch')).length === 20);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await podsOf(env, 'batch')).length, 20);
});

test('a ReplicaSet being deleted creates nothing more', async (t) => {
  const env = await startControllerEnv(t);
  await env.run(startReplicaSetController);
  await env.api.client.create(Resources.replicaSets, 'default', { ...replicaSet('gone', 0), metadata: { name: 'gone', namespace: 'default', finalizers: ['test/hold'] } });
  await env.api.client.delete(Resources.replicaSets, 'default', 'gone');
  await env.api.client.patch(Resources.replicaSets, 'default', 'gone', 'merge', { spec: { replicas: 3 } });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await podsOf(env, 'gone')).length, 0);
  await env.api.client.patch(Resources.replicaSets, 'default', 'gone', 'merge', { metadata: { finalizers: null } });
});

// ---- pure helpers --------------------------------------------------------------------------------

function pod(name: string, opts: { node?: string; phase?: string; ready?: boolean; readyAt?: number; created?: number; restarts?: number; cost?: number } = {}): Obj {
  const ts = (ms: number) => new Date(ms).toISOString();
  return {
    metadata: {
      name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: ts(opts.created ?? 0),
      ...(opts.cost !== undefined ? { annotations: { 'controller.kubernetes.io/pod-deletion-cost': String(opts.cost) } } : {}),
    },
    spec: { nodeName: opts.node },
    status: {
      phase: opts.phase ?? 'Running',
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True', lastTransitionTime: ts(opts.readyAt ?? 0) }],
      containerStatuses: [{ restartCount: opts.restarts ?? 0 }],
    },
  };
}

test('deletion ranking follows Kubernetes: unassigned, pending, not ready, cost, doubled-up, recent, restarts', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  const hour = 3600_000;
  const base = { node: 'n1', created: now - 100 * hour, readyAt: now - 100 * hour };
  const cases: [Obj, Obj][] = [
    [pod('unassigned', { ...base, node: undefined }), pod('assigned', base)],
    [pod('pending', { ...base, phase: 'Pending' }), pod('running', base)],
    [pod('notready', { ...base, ready: false }), pod('ready', base)],
    [pod('cheap', { ...base, cost: -5 }), pod('dear', { ...base, cost: 5 })],
    [pod('recently-ready', { ...base, readyAt: now - 1000 }), pod('long-ready', base)],
    [pod('restarting', { ...base, restarts: 4 }), pod('stable', base)],
  ];
  for (const [first, second] of cases) {
    const out = podsToDelete([second, first], [second, first], 1, now);
    assert.equal(out[0].metadata.name, first.metadata.name, `${first.metadata.name} before ${second.metadata.name}`);
  }
  // Doubled up: the pod sharing its node with more of the family goes first.
  const a = pod('crowded', { ...base, node: 'busy' });
  const b = pod('alone', { ...base, node: 'quiet' });
  const family = [a, b, pod('x', { ...base, node: 'busy' }), pod('y', { ...base, node: 'busy' })];
  assert.equal(podsToDelete([b, a], family, 1, now)[0].metadata.name, 'crowded');
});

test('slow start runs batches of 1, 2, 4, ... and stops after a failing batch', async () => {
  const concurrent: number[] = [];
  let running = 0;
  const r = await slowStartBatch(Array.from({ length: 20 }), async () => {
    running++;
    concurrent.push(running);
    await new Promise((res) => setTimeout(res, 1));
    running--;
  });
  assert.equal(r.successes, 20);
  // 1 + 2 + 4 + 8 + 5: the highest concurrency reached is the largest batch.
  assert.equal(Math.max(...concurrent), 8);
  let n = 0;
  const failing = await slowStartBatch(Array.from({ length: 20 }), async () => { n++; if (n > 3) throw new Error('quota'); });
  // Batches 1 and 2 succeed, the batch of 4 fails: 7 tries, not 20.
  assert.equal(n, 7);
  assert.equal(failing.successes, 3);
  assert.equal((failing.error as Error).message, 'quota');
});

test('expectations hold a sync back until the informer saw every creation and deletion', () => {
  let now = 0;
  const e = new Expectations({ now: () => now });
  assert.ok(e.satisfied('ns/rs'));
  e.expect('ns/rs', 2);
  assert.ok(!e.satisfied('ns/rs'));
  e.creationObserved('ns/rs');
  e.creationObserved('ns/rs');
  assert.ok(e.satisfied('ns/rs'));
  e.expect('ns/rs', 0, ['ns/a', 'ns/b']);
  e.deletionObserved('ns/rs', 'ns/a');
  e.deletionObserved('ns/rs', 'ns/a');
  assert.ok(!e.satisfied('ns/rs'));
  now += 6 * 60_000;     // a lost event must not wedge the set forever
  assert.ok(e.satisfied('ns/rs'));
});

test('status reports ReplicaFailure while creation fails and availability after minReadySeconds', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  const rs: Obj = { metadata: { name: 'r', generation: 4 }, spec: { replicas: 3, minReadySeconds: 10, template: { metadata: { labels: { app: 'r' } } } } };
  const ready = (name: string, agoMs: number) => ({ ...pod(name, { readyAt: now - agoMs }), metadata: { name, labels: { app: 'r' } } });
  const s = replicaSetStatus(rs, [ready('a', 60_000), ready('b', 1000)], new Error('pods "r-" is forbidden: exceeded quota'), now);
  assert.equal(s.replicas, 2);
  assert.equal(s.readyReplicas, 2);
  assert.equal(s.availableReplicas, 1);
  assert.equal(s.observedGeneration, 4);
  assert.equal(s.conditions[0].type, 'ReplicaFailure');
  assert.equal(s.conditions[0].reason, 'FailedCreate');
  const healed = replicaSetStatus({ ...rs, status: s }, [], undefined, now);
  assert.equal(healed.conditions, undefined);
});
