// skiff's own CRDs follow the release: a server started on an older data dir replaces a CRD whose
// definition changed (a new printer column, a new status field) and leaves an unchanged one alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import { bootstrapObjects, CRD_HASH_ANNOTATION } from '../../src/server/bootstrap.js';
import { Resources } from '../../src/client/types.js';

const OPTS = { kubernetesServiceIp: '10.43.0.1', advertiseAddress: '127.0.0.1', port: 6443 };
const CLUSTERS = 'clusters.fleet.skiff.io';

test('an older skiff CRD is replaced by this release\'s definition; an unchanged one is not rewritten', async (t) => {
  const api = await startLocalApi(t);
  await bootstrapObjects(api.objects, OPTS);
  const crd = () => api.client.get(Resources.customResourceDefinitions, undefined, CLUSTERS) as Promise<any>;
  const first = await crd();
  const columns = (c: any) => c.spec.versions[0].additionalPrinterColumns.map((x: any) => x.name);
  assert.ok(columns(first).includes('Bundles-Ready'));
  assert.match(first.metadata.annotations[CRD_HASH_ANNOTATION], /^[0-9a-f]{16}$/);

  // Another start with the same release: nothing written.
  await bootstrapObjects(api.objects, OPTS);
  assert.equal((await crd()).metadata.resourceVersion, first.metadata.resourceVersion);

  // A data dir from an older release: its CRD lacks the column and has another hash.
  const old = structuredClone(first);
  old.spec.versions[0].additionalPrinterColumns = old.spec.versions[0].additionalPrinterColumns.filter((x: any) => x.name !== 'Bundles-Ready');
  old.metadata.annotations[CRD_HASH_ANNOTATION] = '0000000000000000';
  await api.client.update(Resources.customResourceDefinitions, undefined, old);
  await bootstrapObjects(api.objects, OPTS);
  const now = await crd();
  assert.ok(columns(now).includes('Bundles-Ready'), 'the column is back');
  assert.equal(now.metadata.annotations[CRD_HASH_ANNOTATION], first.metadata.annotations[CRD_HASH_ANNOTATION]);
  assert.equal(now.metadata.uid, first.metadata.uid, 'updated in place, never deleted (that would delete every Cluster)');
});
