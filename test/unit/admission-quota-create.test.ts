// ResourceQuota admission against the real in-process API (no quota controller running, so every
// refusal comes from admission counting the cache): exceeded and failed-quota wording, object counts,
// scopes, services, claims, and concurrent creates racing for the last unit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { ApiError } from '../../src/api/status.js';
import { Resources } from '../../src/client/types.js';
import { startLocalApi } from '../helpers/local-api.js';

const NS = 'default';
type Obj = KObject & Record<string, any>;

function pod(name: string, resources?: Record<string, Record<string, string>>, extra: Record<string, any> = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { containers: [{ name: 'c', image: 'busybox', ...(resources ? { resources } : {}) }], ...extra },
  };
}

function quota(name: string, hard: Record<string, string>, spec: Record<string, any> = {}): Obj {
  return { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name }, spec: { hard, ...spec } };
}

async function refused(p: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.code, 403);
    assert.equal(e.reason, 'Forbidden');
    assert.equal(e.message, message);
    return true;
  });
}

const cpu = (c: string) => ({ requests: { cpu: c } });

test('pods beyond the quota are refused with the exceeded-quota message', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.resourceQuotas, NS, quota('q', { pods: '2', 'requests.cpu': '1' }));
  await client.create(Resources.pods, NS, pod('a', cpu('300m')));
  await client.create(Resources.pods, NS, pod('b', cpu('300m')));
  await refused(client.create(Resources.pods, NS, pod('c', cpu('300m'))),
    'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2');
  await client.delete(Resources.pods, NS, 'b');
  await refused(client.create(Resources.pods, NS, pod('c', cpu('800m'))),
    'pods "c" is forbidden: exceeded quota: q, requested: requests.cpu=800m, used: requests.cpu=300m, limited: requests.cpu=1');
  // Both over at once: every exceeded resource, in name order.
  await client.create(Resources.pods, NS, pod('c', cpu('700m')));
  await refused(client.create(Resources.pods, NS, pod('d', cpu('1'))),
    'pods "d" is forbidden: exceeded quota: q, requested: pods=1,requests.cpu=1, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1');
  // A dry run is checked but holds nothing.
  await client.delete(Resources.pods, NS, 'c');
  await client.create(Resources.pods, NS, pod('e', cpu('100m')), { dryRun: true });
  await client.create(Resources.pods, NS, pod('e', cpu('100m')));
});

test('a pod without the cpu or memory a quota constrains is refused, naming containers', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.resourceQuotas, NS, quota('compute', { 'requests.cpu': '2', 'limits.memory': '1Gi', pods: '10' }));
  const p = pod('p', cpu('100m'), { initContainers: [{ name: 'init', image: 'busybox' }] });
  p.spec.containers.push({ name: 'b', image: 'busybox', resources: { limits: { memory: '64Mi' } } });
  await refused(client.create(Resources.pods, NS, p),
    'pods "p" is forbidden: failed quota: compute: must specify limits.memory for: c,init; requests.cpu for: b,init');
});

test('object counts of any kind, and services and claims', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.resourceQuotas, NS, quota('objects', {
    configmaps: '1', 'count/deployments.apps': '0', 'services.nodeports': '1', 'requests.storage': '3Gi',
  }));
  await client.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one' } });
  await refused(client.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'two' } }),
    'configmaps "two" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1');
  await refused(client.create(Resources.deployments, NS, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  }), 'deployments.apps "web" is forbidden: exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=0, limited: count/deployments.apps=0');

  const svc = (name: string, ports: number): Obj => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name },
    spec: { type: 'NodePort', selector: { app: 'x' }, ports: Array.from({ length: ports }, (_, i) => ({ name: `p${i}`, port: 80 + i })) },
  });
  await refused(client.create(Resources.services, NS, svc('two-ports', 2)),
    'services "two-ports" is forbidden: exceeded quota: objects, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1');
  await client.create(Resources.services, NS, svc('one-port', 1));

  const claim = (name: string, storage: string): Obj => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
  });
  await client.create(Resources.persistentVolumeClaims, NS, claim('a', '2Gi'));
  await refused(client.create(Resources.persistentVolumeClaims, NS, claim('b', '2Gi')),
    'persistentvolumeclaims "b" is forbidden: exceeded quota: objects, requested: requests.storage=2Gi, used: requests.storage=2Gi, limited: requests.storage=3Gi');
});

test('a scoped quota counts only the pods in its scope', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.resourceQuotas, NS, quota('best-effort', { pods: '1' }, { scopes: ['BestEffort'] }));
  await client.create(Resources.pods, NS, pod('be-1'));
  await client.create(Resources.pods, NS, pod('burstable-1', cpu('100m')));
  await client.create(Resources.pods, NS, pod('burstable-2', cpu('100m')));
  await refused(client.create(Resources.pods, NS, pod('be-2')),
    'pods "be-2" is forbidden: exceeded quota: best-effort, requested: pods=1, used: pods=1, limited: pods=1');
  // Scoped quotas say nothing about other kinds.
  await client.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'free' } });
});

test('concurrent creates cannot both take the last unit', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.resourceQuotas, NS, quota('q', { pods: '3' }));
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.create(Resources.pods, NS, pod(`p${i}`))));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
  for (const r of results) {
    if (r.status === 'rejected') assert.match((r.reason as Error).message, /exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3$/);
  }
  assert.equal((await client.list(Resources.pods, NS)).items.length, 3);
  // Once stored, the reservations are gone: deleting one frees exactly one place.
  await client.delete(Resources.pods, NS, 'p0', { gracePeriodSeconds: 0 });
  await client.create(Resources.pods, NS, pod('again'));
  await refused(client.create(Resources.pods, NS, pod('more')),
    'pods "more" is forbidden: exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3');
});

test('a create refused by storage (name taken) holds no quota', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.resourceQuotas, NS, quota('q', { pods: '2' }));
  await client.create(Resources.pods, NS, pod('a'));
  await assert.rejects(client.create(Resources.pods, NS, pod('a')), (e: unknown) => e instanceof ApiError && e.code === 409);
  await client.create(Resources.pods, NS, pod('b'));
});
