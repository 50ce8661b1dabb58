// The namespace controller on the client interface: a new namespace gets its default
// ServiceAccount; a deleted one is emptied (built-in and custom resources, found through discovery),
// waits while anything in it is still terminating, then loses its `kubernetes` finalizer and goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resources, type ServedResource } from '../../src/client/types.js';
import { startNamespaceController } from '../../src/controllers/namespace.js';
import { eventually, startControllerEnv } from '../helpers/controller-env.js';
import { createWidgetCrd, WIDGETS } from '../helpers/crds.js';

const NS = 'doomed';

test('discovery through the in-process client: each resource once, in its preferred version, custom resources too', async (t) => {
  const env = await startControllerEnv(t);
  const c = env.api.client;
  await createWidgetCrd(c);
  const served = (await eventually(async () => {
    const all = await c.preferredResources();
    return all.some((r) => r.group === 'example.com') && all;
  }, 5000, 'CRD in discovery')) as ServedResource[];
  const find = (group: string, resource: string) => served.filter((r) => r.group === group && r.resource === resource);
  assert.deepEqual(find('autoscaling', 'horizontalpodautoscalers').map((r) => r.version), ['v2'], 'once, preferred version');
  assert.deepEqual(find('apps', 'deployments').map((r) => [r.version, r.kind, r.namespaced]), [['v1', 'Deployment', true]]);
  assert.deepEqual(find('', 'nodes').map((r) => r.namespaced), [false]);
  assert.deepEqual(find('example.com', 'widgets').map((r) => [r.version, r.kind, r.namespaced]), [['v1', 'Widget', true]]);
  assert.ok(served.every((r) => !r.resource.includes('/')), 'no subresources');
});

test('a new namespace gets its default ServiceAccount', async (t) => {
  const env = await startControllerEnv(t);
  await env.run(startNamespaceController);
  await env.api.client.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fresh' } });
  await eventually(() => env.api.client.get(Resources.serviceAccounts, 'fresh', 'default'), 10_000, 'default ServiceAccount');
});

test('a deleted namespace is emptied, waits for what still terminates, then goes', async (t) => {
  const env = await startControllerEnv(t);
  const c = env.api.client;
  await createWidgetCrd(c);
  await c.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await eventually(() => c.create(WIDGETS, NS, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }), 5000, 'CRD served');
  await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'plain' } });
  await c.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', finalizers: ['example.com/hold'] } });
  await c.create(Resources.deployments, NS, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  });
  await env.run(startNamespaceController);

  await c.delete(Resources.namespaces, undefined, NS);
  await eventually(async () => !(await c.get(WIDGETS, NS, 'w')) && !(await c.get(Resources.configMaps, NS, 'plain'))
    && !(await c.get(Resources.deployments, NS, 'web')), 10_000, 'contents deleted');
  const held = await c.get(Resources.configMaps, NS, 'held');
  assert.ok(held?.metadata.deletionTimestamp, 'the held ConfigMap is terminating');
  const ns = await c.get<any>(Resources.namespaces, undefined, NS);
  assert.ok(ns?.metadata.deletionTimestamp, 'the namespace waits while its contents terminate');
  assert.deepEqual(ns.spec?.finalizers, ['kubernetes']);

  await c.patch(Resources.configMaps, NS, 'held', 'merge', { metadata: { finalizers: null } });
  await eventually(async () => !(await c.get(Resources.namespaces, undefined, NS)), 10_000, 'namespace gone');
});
