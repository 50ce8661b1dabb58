// PodDisruptionBudget status against the real in-process API: minAvailable / maxUnavailable as
// integers and percentages over the controllers' scale, the eviction API spending and being refused
// disruptions, disruptedPods clean-up, and the fail-safe when a pod's controller cannot be found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources } from '../../src/client/types.js';
import { DELETION_TIMEOUT_MS, disruptedPods, healthyCount, scaledValue, startDisruptionController } from '../../src/controllers/disruption.js';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';

const NS = 'default';
type Obj = KObject & Record<string, any>;
const labels = { app: 'web' };
const template = { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };

async function env(t: Parameters<typeof startControllerEnv>[0]): Promise<ControllerEnv> {
  const e = await startControllerEnv(t);
  await e.run(startDisruptionController);
  return e;
}

/** A Deployment of `replicas`, its ReplicaSet, and `ready` Ready pods of it (by hand: no workload loops run here). */
async function workload(e: ControllerEnv, replicas: number, ready: number) {
  const c = e.api.client;
  const d = await c.create(Resources.deployments, NS, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas, selector: { matchLabels: labels }, template } });
  const ref = (o: KObject) => ({ apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata.name!, uid: o.metadata.uid!, controller: true });
  const rs = await c.create(Resources.replicaSets, NS, { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web-1', ownerReferences: [ref(d)] }, spec: { replicas, selector: { matchLabels: labels }, template } });
  for (let i = 0; i < ready; i++) {
    const p = await c.create<Obj>(Resources.pods, NS, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `web-1-${i}`, labels, ownerReferences: [ref(rs)] }, spec: template.spec });
    const next = structuredClone(p);
    next.status = { phase: 'Running', podIP: `10.42.0.${i + 1}`, conditions: [{ type: 'Ready', status: 'True' }] };
    await c.updateStatus(Resources.pods, NS, next);
  }
}

async function pdb(e: ControllerEnv, name: string, spec: Record<string, unknown>): Promise<void> {
  await e.api.client.create(Resources.podDisruptionBudgets, NS, { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name }, spec: { selector: { matchLabels: labels }, ...spec } });
}

const statusOf = async (e: ControllerEnv, name: string) => (await e.api.client.get<Obj>(Resources.podDisruptionBudgets, NS, name))?.status;

test('minAvailable as an integer counts the selected pods', async (t) => {
  const e = await env(t);
  await workload(e, 3, 3);
  await pdb(e, 'web', { minAvailable: 2 });
  const s = await eventually(async () => { const x = await statusOf(e, 'web'); return x?.expectedPods === 3 ? x : undefined; }, 5000, 'status');
  assert.equal(s.currentHealthy, 3);
  assert.equal(s.desiredHealthy, 2);
  assert.equal(s.disruptionsAllowed, 1);
  assert.equal(s.observedGeneration, 1);
  assert.equal(s.disruptedPods, undefined);
  assert.equal(s.conditions.length, 1);
  assert.deepEqual({ ...s.conditions[0], lastTransitionTime: undefined }, {
    type: 'DisruptionAllowed', status: 'True', reason: 'SufficientPods', message: '', observedGeneration: 1, lastTransitionTime: undefined,
  });
  assert.match(s.conditions[0].lastTransitionTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

test('percentages and maxUnavailable are taken of the Deployment scale, not of the pods present', async (t) => {
  const e = await env(t);
  await workload(e, 4, 3);   // one replica missing
  await pdb(e, 'max', { maxUnavailable: '50%' });
  await pdb(e, 'min', { minAvailable: '75%' });
  const max = await eventually(async () => { const x = await statusOf(e, 'max'); return x?.expectedPods === 4 ? x : undefined; }, 5000, 'max status');
  assert.deepEqual([max.currentHealthy, max.desiredHealthy, max.disruptionsAllowed], [3, 2, 1]);
  const min = await eventually(async () => { const x = await statusOf(e, 'min'); return x?.expectedPods === 4 ? x : undefined; }, 5000, 'min status');
  assert.deepEqual([min.currentHealthy, min.desiredHealthy, min.disruptionsAllowed], [3, 3, 0]);
  assert.equal(min.conditions[0].reason, 'InsufficientPods');
  assert.equal(min.conditions[0].status, 'False');
});

test('evictions spend the budget and are refused with 429 once it is used up', async (t) => {
  const e = await env(t);
  const c = e.api.client;
  await workload(e, 3, 3);
  await pdb(e, 'web', { minAvailable: 2 });
  await eventually(async () => (await statusOf(e, 'web'))?.disruptionsAllowed === 1, 5000, 'one disruption allowed');
  await c.evict(NS, 'web-1-0');
  await eventually(async () => { const s = await statusOf(e, 'web'); return s?.currentHealthy === 2 && s.disruptedPods === undefined; }, 5000, 'evicted pod gone and forgotten');
  assert.equal((await statusOf(e, 'web')).disruptionsAllowed, 0);
  await assert.rejects(c.evict(NS, 'web-1-1'), (err: any) => err.code === 429 && /disruption budget/.test(err.message));
  assert.ok(await c.get(Resources.pods, NS, 'web-1-1'), 'the refused pod is still there');
});

test('a pod whose controller cannot be found fails safe to no disruptions', async (t) => {
  const e = await env(t);
  const c = e.api.client;
  const p = await c.create<Obj>(Resources.pods, NS, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'lost', labels, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'gone', uid: 'gone-uid', controller: true }] },
    spec: template.spec,
  });
  const next = structuredClone(p);
  next.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  await c.updateStatus(Resources.pods, NS, next);
  await pdb(e, 'web', { maxUnavailable: 1 });
  const s = await eventually(async () => { const x = await statusOf(e, 'web'); return x?.conditions?.[0]?.reason === 'SyncFailed' ? x : undefined; }, 5000, 'SyncFailed');
  assert.equal(s.disruptionsAllowed, 0);
  assert.equal(s.conditions[0].message, 'found no controllers for pod "lost"');
});

test('disrupted pods count as unhealthy for two minutes unless they start terminating', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  const pod = (name: string, deleting = false): Obj => ({
    metadata: { name, ...(deleting ? { deletionTimestamp: '2026-01-01T00:09:59Z' } : {}) },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  });
  const pods = [pod('recent'), pod('stale'), pod('terminating', true), pod('healthy')];
  const pdbObj: Obj = { metadata: {}, status: { disruptedPods: {
    recent: '2026-01-01T00:09:30Z', stale: '2026-01-01T00:07:00Z', terminating: '2026-01-01T00:09:00Z', missing: '2026-01-01T00:09:00Z',
  } } };
  const { disrupted, recheckAt } = disruptedPods(pdbObj, pods, now);
  assert.deepEqual(disrupted, { recent: '2026-01-01T00:09:30Z' });
  assert.equal(recheckAt, Date.parse('2026-01-01T00:09:30Z') + DELETION_TIMEOUT_MS);
  assert.equal(healthyCount(pods, disrupted, now), 2, 'stale and healthy count; recent and terminating do not');
});

test('percent values round up and reject non-percent strings', () => {
  assert.equal(scaledValue('50%', 3, true), 2);
  assert.equal(scaledValue('50%', 3, false), 1);
  assert.equal(scaledValue(2, 10, true), 2);
  assert.throws(() => scaledValue('two', 3, true), /not a percentage/);
});
