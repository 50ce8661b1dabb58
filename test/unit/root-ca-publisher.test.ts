import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';
import { startRootCaPublisher, ROOT_CA_CONFIGMAP } from '../../src/controllers/root-ca-publisher.js';
import { Resources } from '../../src/client/types.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

test('root CA publisher: every namespace gets kube-root-ca.crt, restored after deletion or edits', async (t) => {
  const env = await startControllerEnv(t);
  const c = env.api.client;
  await c.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
  await env.run((ctx) => startRootCaPublisher(ctx, CA));
  const get = () => c.get<any>(Resources.configMaps, 'team', ROOT_CA_CONFIGMAP).catch(() => undefined);
  const published = await eventually(get, 10_000, 'the ConfigMap in an existing namespace');
  assert.deepEqual(published.data, { 'ca.crt': CA });
  assert.match(published.metadata.annotations['kubernetes.io/description'], /verify the kube-apiserver/);

  await c.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } });
  await eventually(() => c.get<any>(Resources.configMaps, 'later', ROOT_CA_CONFIGMAP).catch(() => undefined), 10_000, 'a new namespace');

  await c.patch(Resources.configMaps, 'team', ROOT_CA_CONFIGMAP, 'merge', { data: { 'ca.crt': 'tampered', extra: 'x' } });
  await eventually(async () => JSON.stringify((await get())?.data) === JSON.stringify({ 'ca.crt': CA }), 10_000, 'edits undone');
  await c.delete(Resources.configMaps, 'team', ROOT_CA_CONFIGMAP);
  await eventually(async () => (await get())?.data?.['ca.crt'] === CA, 10_000, 'recreated after deletion');
});
