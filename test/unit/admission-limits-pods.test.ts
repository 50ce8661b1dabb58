// LimitRanger admission against the real in-process API: container defaults and their annotation,
// Container and Pod min/max/ratio checks with Kubernetes' wording, claims' storage bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { ApiError } from '../../src/api/status.js';
import { Resources } from '../../src/client/types.js';
import { startLocalApi } from '../helpers/local-api.js';

const NS = 'default';
type Obj = KObject & Record<string, any>;

function pod(name: string, containers: Record<string, any>[], extra: Record<string, any> = {}): Obj {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: containers.map((c) => ({ image: 'busybox', ...c })), ...extra } };
}

function limitRange(name: string, limits: Record<string, any>[]): Obj {
  return { apiVersion: 'v1', kind: 'LimitRange', metadata: { name }, spec: { limits } };
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

test('defaults fill what containers and init containers leave out, and the annotation says what was set', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.limitRanges, NS, limitRange('defaults', [
    { type: 'Container', default: { cpu: '500m', memory: '256Mi' }, defaultRequest: { cpu: '100m', memory: '128Mi' } },
  ]));
  const created = await client.create<Obj>(Resources.pods, NS, pod('p', [
    { name: 'bare' },
    { name: 'half', resources: { limits: { cpu: '1' } } },
  ], { initContainers: [{ name: 'init', image: 'busybox' }] }));

  const [bare, half] = created.spec.containers;
  assert.deepEqual(bare.resources, { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } });
  // The request defaulted from its own limit before LimitRanger ran, so only memory came from the range.
  assert.deepEqual(half.resources, { limits: { cpu: '1', memory: '256Mi' }, requests: { cpu: '1', memory: '128Mi' } });
  assert.deepEqual(created.spec.initContainers[0].resources.requests, { cpu: '100m', memory: '128Mi' });
  assert.equal(created.metadata.annotations?.['kubernetes.io/limit-ranger'],
    'LimitRanger plugin set: cpu, memory request for container bare; cpu, memory limit for container bare; '
    + 'memory request for container half; memory limit for container half; '
    + 'cpu, memory request for init container init; cpu, memory limit for init container init');

  // A pod that states everything is left as it is, without the annotation.
  const full = await client.create<Obj>(Resources.pods, NS, pod('full', [
    { name: 'c', resources: { limits: { cpu: '200m', memory: '64Mi' }, requests: { cpu: '200m', memory: '64Mi' } } },
  ]));
  assert.equal(full.metadata.annotations?.['kubernetes.io/limit-ranger'], undefined);
});

test('a LimitRange with only max defaults the limit and the request to it', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.limitRanges, NS, limitRange('max', [{ type: 'Container', max: { cpu: '800m' } }]));
  const created = await client.create<Obj>(Resources.pods, NS, pod('p', [{ name: 'c' }]));
  assert.deepEqual(created.spec.containers[0].resources, { limits: { cpu: '800m' }, requests: { cpu: '800m' } });
});

test('Container min, max and ratio are enforced with Kubernetes wording', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.limitRanges, NS, limitRange('bounds', [
    { type: 'Container', max: { cpu: '500m' }, min: { memory: '64Mi' }, maxLimitRequestRatio: { memory: '2' },
      default: { cpu: '200m', memory: '128Mi' }, defaultRequest: { cpu: '100m', memory: '64Mi' } },
  ]));

  await refused(client.create(Resources.pods, NS, pod('big', [{ name: 'c', resources: { limits: { cpu: '1' } } }])),
    'pods "big" is forbidden: maximum cpu usage per Container is 500m, but limit is 1');
  await refused(client.create(Resources.pods, NS, pod('small', [{ name: 'c', resources: { requests: { memory: '32Mi' }, limits: { memory: '64Mi' } } }])),
    'pods "small" is forbidden: minimum memory usage per Container is 64Mi, but request is 32Mi');
  await refused(client.create(Resources.pods, NS, pod('ratio', [{ name: 'c', resources: { requests: { memory: '64Mi' }, limits: { memory: '256Mi' } } }])),
    'pods "ratio" is forbidden: memory max limit to request ratio per Container is 2, but provided ratio is 4.000000');
  // Several broken constraints are listed together, as an aggregate.
  await refused(client.create(Resources.pods, NS, pod('both', [{ name: 'c', resources: { limits: { cpu: '2', memory: '1Gi' }, requests: { memory: '100Mi' } } }])),
    'pods "both" is forbidden: [maximum cpu usage per Container is 500m, but limit is 2, '
    + 'memory max limit to request ratio per Container is 2, but provided ratio is 10.240000]');

  // Init containers are held to the same bounds.
  await refused(client.create(Resources.pods, NS, pod('init', [{ name: 'c' }], { initContainers: [{ name: 'i', image: 'busybox', resources: { limits: { cpu: '600m' } } }] })),
    'pods "init" is forbidden: maximum cpu usage per Container is 500m, but limit is 600m');
  // Within bounds: admitted.
  await client.create(Resources.pods, NS, pod('fits', [{ name: 'c', resources: { limits: { cpu: '500m' } } }]));
});

test('Pod bounds apply to the sum of the containers', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.limitRanges, NS, limitRange('per-pod', [{ type: 'Pod', max: { memory: '1Gi' } }]));
  const c = (name: string, memory: string) => ({ name, resources: { limits: { memory } } });
  await client.create(Resources.pods, NS, pod('ok', [c('a', '512Mi'), c('b', '512Mi')]));
  await refused(client.create(Resources.pods, NS, pod('over', [c('a', '512Mi'), c('b', '768Mi')])),
    'pods "over" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1280Mi');
  await refused(client.create(Resources.pods, NS, pod('unstated', [{ name: 'a' }])),
    'pods "unstated" is forbidden: maximum memory usage per Pod is 1Gi.  No limit is specified');
});

test('claims are held to storage min and max on create and update', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.limitRanges, NS, limitRange('storage', [{ type: 'PersistentVolumeClaim', min: { storage: '1Gi' }, max: { storage: '10Gi' } }]));
  const claim = (name: string, storage: string): Obj => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
  });
  await refused(client.create(Resources.persistentVolumeClaims, NS, claim('tiny', '500Mi')),
    'persistentvolumeclaims "tiny" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi');
  await refused(client.create(Resources.persistentVolumeClaims, NS, claim('huge', '20Gi')),
    'persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi');
  const created = structuredClone(await client.create<Obj>(Resources.persistentVolumeClaims, NS, claim('ok', '5Gi')));
  // Only a bound claim may grow.
  const ok = structuredClone(await client.updateStatus<Obj>(Resources.persistentVolumeClaims, NS, { ...created, status: { phase: 'Bound' } }));
  ok.spec.resources.requests.storage = '11Gi';
  await refused(client.update(Resources.persistentVolumeClaims, NS, ok),
    'persistentvolumeclaims "ok" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 11Gi');
});

test('a pod update is not checked against ranges created after the pod', async (t) => {
  const { client } = await startLocalApi(t);
  const p = structuredClone(await client.create<Obj>(Resources.pods, NS, pod('old', [{ name: 'c' }])));
  await client.create(Resources.limitRanges, NS, limitRange('late', [{ type: 'Container', max: { cpu: '100m' } }]));
  p.metadata.labels = { touched: 'yes' };
  const updated = await client.update<Obj>(Resources.pods, NS, p);
  assert.equal(updated.metadata.labels?.touched, 'yes');
  assert.equal(updated.spec.containers[0].resources?.limits, undefined);
});
