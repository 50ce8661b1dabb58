// ResourceQuota status against the real in-process API (pod counts, compute requests and limits,
// object counts of any built-in kind, services, claims, scopes), and the usage arithmetic on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources } from '../../src/client/types.js';
import { computeUsage, format, startResourceQuotaController } from '../../src/controllers/resourcequota.js';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';

const NS = 'default';
type Obj = KObject & Record<string, any>;

function pod(name: string, resources: Record<string, Record<string, string>> | undefined, extra: Record<string, any> = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { containers: [{ name: 'c', image: 'busybox', ...(resources ? { resources } : {}) }], ...extra },
  };
}

test('quota status follows pods, compute resources and object counts', async (t) => {
  const e = await startControllerEnv(t);
  await e.run(startResourceQuotaController);
  const c = e.api.client;
  await c.create(Resources.resourceQuotas, NS, {
    apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'q' },
    spec: { hard: {
      pods: '10', 'requests.cpu': '4', 'requests.memory': '8Gi', 'limits.cpu': '8', 'limits.memory': '16Gi',
      'count/deployments.apps': '5', configmaps: '10', services: '5', 'services.nodeports': '3', persistentvolumeclaims: '2', 'requests.storage': '10Gi',
    } },
  });
  const used = async () => (await c.get<Obj>(Resources.resourceQuotas, NS, 'q'))?.status?.used;
  const initial = await eventually(used, 5000, 'initial status') as Record<string, string>;
  assert.deepEqual(initial, {
    pods: '0', 'requests.cpu': '0', 'requests.memory': '0', 'limits.cpu': '0', 'limits.memory': '0',
    'count/deployments.apps': '0', configmaps: '0', services: '0', 'services.nodeports': '0', persistentvolumeclaims: '0', 'requests.storage': '0',
  });
  const q = await c.get<Obj>(Resources.resourceQuotas, NS, 'q');
  assert.deepEqual(q!.status.hard, q!.spec.hard);

  await c.create(Resources.pods, NS, pod('a', { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } }));
  await c.create(Resources.pods, NS, pod('b', { limits: { cpu: '1', memory: '1Gi' } }));
  const done = await c.create<Obj>(Resources.pods, NS, pod('done', { requests: { cpu: '2', memory: '1Mi' }, limits: { cpu: '2', memory: '1Mi' } }));
  await c.updateStatus(Resources.pods, NS, { ...structuredClone(done), status: { phase: 'Succeeded' } });
  await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' } });
  await c.create(Resources.deployments, NS, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' },
    spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  });
  await c.create(Resources.services, NS, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'np' }, spec: { type: 'NodePort', ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] } });
  await c.create(Resources.persistentVolumeClaims, NS, {
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data' },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  });

  const want = {
    pods: '2', 'requests.cpu': '1250m', 'requests.memory': '1088Mi', 'limits.cpu': '1500m', 'limits.memory': '1152Mi',
    'count/deployments.apps': '1', configmaps: '1', services: '1', 'services.nodeports': '2', persistentvolumeclaims: '1', 'requests.storage': '1Gi',
  };
  await eventually(async () => JSON.stringify(await used()) === JSON.stringify(want), 5000, `usage ${JSON.stringify(want)}`);

  await c.delete(Resources.pods, NS, 'a');
  await eventually(async () => (await used())?.pods === '1' && (await used())?.['requests.cpu'] === '1', 5000, 'deleted pod released');
});

test('scopes restrict which pods a quota counts', () => {
  const pods = [
    pod('best-effort', undefined),
    pod('burstable', { requests: { cpu: '100m' } }),
    pod('deadline', { requests: { cpu: '100m' } }, { activeDeadlineSeconds: 60 }),
    pod('high', { requests: { memory: '1Gi' } }, { priorityClassName: 'high' }),
  ];
  const usage = (spec: Record<string, any>) => computeUsage({ metadata: {}, spec } as Obj, ['pods'], (r) => (r === 'pods' ? pods : []), Date.now()).pods;
  assert.equal(usage({ scopes: ['BestEffort'] }), '1');
  assert.equal(usage({ scopes: ['NotBestEffort'] }), '3');
  assert.equal(usage({ scopes: ['Terminating'] }), '1');
  assert.equal(usage({ scopes: ['NotTerminating', 'NotBestEffort'] }), '2');
  assert.equal(usage({ scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['high'] }] } }), '1');
  assert.equal(usage({ scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'DoesNotExist' }] } }), '3');
});

test('pods past their deletion grace period and init containers are counted as Kubernetes counts them', () => {
  const now = Date.parse('2026-01-01T00:01:00Z');
  const gone = pod('gone', { requests: { cpu: '1' } });
  gone.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
  gone.metadata.deletionGracePeriodSeconds = 30;
  const init = pod('init', { requests: { cpu: '100m' } }, { initContainers: [{ name: 'i', image: 'x', resources: { requests: { cpu: '2' } } }] });
  const used = computeUsage({ metadata: {}, spec: {} } as Obj, ['pods', 'cpu'], () => [gone, init], now);
  assert.deepEqual(used, { pods: '1', cpu: '2' });
});

test('sums are written in canonical quantity form', () => {
  assert.equal(format({ milli: 1500, binary: false }, 'requests.cpu'), '1500m');
  assert.equal(format({ milli: 2000, binary: false }, 'limits.cpu'), '2');
  assert.equal(format({ milli: 128 * 2 ** 20 * 1000, binary: true }, 'requests.memory'), '128Mi');
  assert.equal(format({ milli: 1e9 * 1000, binary: false }, 'requests.memory'), '1G');
  assert.equal(format({ milli: 1234 * 1000, binary: true }, 'requests.memory'), '1234');
  assert.equal(format(undefined, 'pods'), '0');
});
