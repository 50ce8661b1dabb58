import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject, ManagedFieldsEntry } from '../../src/api/object.js';
import { loadSchemaSet } from '../../src/api/schema.js';
import {
  decodeManagedFields, FieldSet, objectFieldSet, pathString, updateManagedFields,
} from '../../src/apiserver/patch/index.js';

const schemas = loadSchemaSet();
const deploymentType = schemas.forKind('apps', 'v1', 'Deployment');
const T1 = '2024-05-01T10:00:00Z';
const T2 = '2024-05-01T11:00:00Z';

function deployment(): KObject {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '5', generation: 1, creationTimestamp: T1, labels: { app: 'web' }, finalizers: ['a.io/x'] },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'app', image: 'nginx:1.25', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] }] },
      },
    },
    status: { replicas: 1 },
  };
}

function entries(mf: ManagedFieldsEntry[] | undefined) {
  return (mf ?? []).map((e) => ({ manager: e.manager, operation: e.operation, paths: FieldSet.fromFieldsV1(e.fieldsV1).paths().map(pathString) }));
}

test('FieldsV1 round-trips and is canonical', () => {
  const v1 = { 'f:metadata': { 'f:labels': { 'f:app': {} } }, 'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {} } } } };
  const set = FieldSet.fromFieldsV1(v1);
  assert.deepEqual(set.toFieldsV1(), v1);
  assert.deepEqual(set.paths().map(pathString), ['.metadata.labels.app', '.spec.containers[name="app"]', '.spec.containers[name="app"].image']);
  // Key fields in another order name the same element.
  const reordered = FieldSet.fromFieldsV1({ 'k:{"protocol":"TCP","containerPort":80}': {} });
  assert.ok(reordered.has(['k:{"containerPort":80,"protocol":"TCP"}']));
  assert.equal(pathString(['f:ports', 'k:{"containerPort":80,"protocol":"TCP"}', 'f:name']), '.ports[containerPort=80,protocol="TCP"].name');
  assert.equal(pathString(['f:finalizers', 'v:"a.io/x"']), '.finalizers[="a.io/x"]');
  assert.throws(() => FieldSet.fromFieldsV1({ 'x:y': {} }), /invalid path element/);
  assert.throws(() => FieldSet.fromFieldsV1({ 'k:{bad': {} }), /invalid path element/);
});

test('FieldSet operations', () => {
  const a = FieldSet.fromPaths([['f:a', 'f:b'], ['f:a', 'f:c'], ['f:d']]);
  const b = FieldSet.fromPaths([['f:a', 'f:b'], ['f:e']]);
  assert.deepEqual(a.union(b).paths().map(pathString), ['.d', '.e', '.a.b', '.a.c']);
  assert.deepEqual(a.difference(b).paths().map(pathString), ['.d', '.a.c']);
  assert.deepEqual(a.intersection(b).paths().map(pathString), ['.a.b']);
  assert.deepEqual(a.withoutPrefixes(FieldSet.fromPaths([['f:a']])).paths().map(pathString), ['.d']);
  assert.ok(a.difference(a).empty);
  // A set holding the other is returned itself; neither side is changed by a union.
  const sub = FieldSet.fromPaths([['f:a', 'f:c']]);
  assert.equal(a.union(sub), a);
  assert.equal(sub.union(a), a);
  assert.ok(sub.subsetOf(a) && !a.subsetOf(sub) && !b.subsetOf(a));
  assert.deepEqual(a.paths().map(pathString), ['.d', '.a.b', '.a.c']);
  assert.deepEqual(b.paths().map(pathString), ['.e', '.a.b']);
  assert.deepEqual(b.union(a).paths().map(pathString), ['.d', '.e', '.a.b', '.a.c']);
  assert.equal(a.withoutPrefixes(FieldSet.fromPaths([['f:x']])), a);
});

test('updateManagedFields: a write of fields the writer owns keeps its stored entry, with a new time', () => {
  const leaseType = schemas.forKind('coordination.k8s.io', 'v1', 'Lease');
  const opts = { manager: 'kubelet', apiVersion: 'coordination.k8s.io/v1', schema: leaseType, schemas };
  const lease = (renewTime: string): KObject => ({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'n1', namespace: 'kube-node-lease' },
    spec: { holderIdentity: 'n1', leaseDurationSeconds: 40, renewTime },
  });
  const created = lease('2024-05-01T10:00:00.000000Z');
  created.metadata.managedFields = updateManagedFields(undefined, created, { ...opts, time: T1 });
  // As the watch cache holds it: frozen all the way down.
  const stored = JSON.parse(JSON.stringify(created), (_k, v) => (typeof v === 'object' && v !== null ? Object.freeze(v) : v)) as KObject;
  const renewed = lease('2024-05-01T10:00:10.000000Z');
  const mf = updateManagedFields(stored, renewed, { ...opts, time: T2 })!;
  assert.equal(mf.length, 1);
  assert.equal(mf[0]!.time, T2);
  assert.equal(mf[0]!.fieldsV1, stored.metadata.managedFields![0]!.fieldsV1);
  // A field the writer did not own yet is added to its entry.
  const more = lease('2024-05-01T10:00:20.000000Z');
  (more.spec as Record<string, unknown>).acquireTime = '2024-05-01T10:00:20.000000Z';
  const grown = updateManagedFields(stored, more, { ...opts, time: T2 })!;
  assert.notEqual(grown[0]!.fieldsV1, stored.metadata.managedFields![0]!.fieldsV1);
  assert.ok(entries(grown)[0]!.paths.includes('.spec.acquireTime'));
});

test('field set of a Deployment follows list types and merge keys', () => {
  const paths = objectFieldSet(deployment(), deploymentType, schemas).paths().map(pathString);
  for (const p of [
    '.metadata.labels.app',
    '.metadata.finalizers[="a.io/x"]',
    '.spec.replicas',
    '.spec.selector', // LabelSelector is an atomic struct
    '.spec.template.spec.containers[name="app"]',
    '.spec.template.spec.containers[name="app"].image',
    '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]', // protocol defaults to TCP
    '.spec.template.spec.containers[name="app"].env[name="A"].value',
    '.status.replicas',
  ]) assert.ok(paths.includes(p), p);
  for (const p of ['.metadata.name', '.metadata.uid', '.metadata.resourceVersion', '.apiVersion', '.kind', '.spec', '.spec.selector.matchLabels.app']) {
    assert.ok(!paths.includes(p), `not ${p}`);
  }
  // Without a schema (custom resources) maps are granular and lists atomic; every key is owned itself.
  const cr = objectFieldSet({ apiVersion: 'x/v1', kind: 'X', metadata: { name: 'x' }, spec: { a: { b: 1 }, l: [1, 2] } }, undefined, undefined);
  assert.deepEqual(cr.paths().map(pathString), ['.spec', '.spec.a', '.spec.l', '.spec.a.b']);
});

test('updateManagedFields: create, then another writer takes what it changes', () => {
  const created = deployment();
  const mf1 = updateManagedFields(undefined, created, { manager: 'kubectl-create', apiVersion: 'apps/v1', time: T1, schema: deploymentType, schemas });
  assert.equal(mf1?.length, 1);
  assert.deepEqual({ ...mf1![0], fieldsV1: undefined }, { manager: 'kubectl-create', operation: 'Update', apiVersion: 'apps/v1', time: T1, fieldsType: 'FieldsV1', fieldsV1: undefined });
  const own1 = entries(mf1)[0].paths;
  assert.ok(own1.includes('.spec.replicas'));
  assert.ok(!own1.some((p) => p.startsWith('.status')), 'status is not owned through the main resource');

  const live = { ...created, metadata: { ...created.metadata, managedFields: mf1 } };
  const scaled = structuredClone(live) as KObject;
  (scaled.spec as Record<string, unknown>).replicas = 3;
  delete (scaled.metadata as Record<string, unknown>).finalizers;
  const mf2 = updateManagedFields(live, scaled, { manager: 'kubectl', apiVersion: 'apps/v1', time: T2, schema: deploymentType, schemas });
  const [first, second] = entries(mf2);
  assert.equal(first.manager, 'kubectl-create');
  assert.ok(!first.paths.includes('.spec.replicas'), 'lost the changed field');
  assert.ok(!first.paths.some((p) => p.startsWith('.metadata.finalizers')), 'lost the removed field');
  assert.ok(first.paths.includes('.spec.template.spec.containers[name="app"].image'));
  assert.deepEqual(second, { manager: 'kubectl', operation: 'Update', paths: ['.spec.replicas'] });
  assert.equal(mf2![0].time, T1, 'unchanged entries keep their time');

  // A write that changes nothing keeps the entries as they are.
  assert.deepEqual(updateManagedFields(live, structuredClone(live), { manager: 'x', apiVersion: 'apps/v1', time: T2, schema: deploymentType, schemas }), mf1);
});

test('updateManagedFields: status writes own status only; client-sent entries replace or reset', () => {
  const live = deployment();
  const next = structuredClone(live);
  next.status = { replicas: 2, readyReplicas: 2 };
  (next.spec as Record<string, unknown>).replicas = 9; // ignored for ownership on the status subresource
  const mf = updateManagedFields(live, next, { manager: 'k3s', apiVersion: 'apps/v1', subresource: 'status', time: T1, schema: deploymentType, schemas });
  assert.deepEqual(mf?.map((e) => e.subresource), ['status']);
  assert.deepEqual(entries(mf)[0].paths, ['.status.readyReplicas', '.status.replicas']);

  const withEntries = { ...live, metadata: { ...live.metadata, managedFields: mf } };
  const reset = { ...withEntries, metadata: { ...withEntries.metadata, managedFields: [] } };
  assert.equal(updateManagedFields(withEntries, reset, { manager: 'm', apiVersion: 'apps/v1', time: T2, schema: deploymentType, schemas }), undefined);
  const bogus = { ...withEntries, metadata: { ...withEntries.metadata, managedFields: [{ manager: 'z', operation: 'Nope' }] } };
  assert.deepEqual(updateManagedFields(withEntries, bogus as unknown as KObject, { manager: 'm', apiVersion: 'apps/v1', time: T2, schema: deploymentType, schemas }), mf);
});

test('updateManagedFields: more than 10 updaters fold into ancient-changes', () => {
  let obj: KObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: {} };
  const cm = schemas.forKind('', 'v1', 'ConfigMap');
  for (let i = 0; i < 12; i++) {
    const next = structuredClone(obj);
    (next.data as Record<string, string>)[`k${i}`] = 'v';
    const time = new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString().replace('.000', '');
    next.metadata.managedFields = updateManagedFields(obj, next, { manager: `m${i}`, apiVersion: 'v1', time, schema: cm, schemas });
    obj = next;
  }
  const mf = obj.metadata.managedFields!;
  assert.equal(mf.length, 10);
  assert.equal(mf[0].manager, 'ancient-changes');
  assert.deepEqual(entries([mf[0]])[0].paths, ['.data.k0', '.data.k1', '.data.k2']);
  assert.equal(mf[9].manager, 'm11');
});

test('updateManagedFields: values the schema cannot track keep the stored entries', () => {
  const live = deployment();
  const mf = updateManagedFields(undefined, live, { manager: 'a', apiVersion: 'apps/v1', time: T1, schema: deploymentType, schemas });
  const stored = { ...live, metadata: { ...live.metadata, managedFields: mf } };
  const broken = structuredClone(stored) as KObject;
  ((broken.spec as any).template.spec.containers as unknown[]).push({ image: 'no-name' });
  assert.deepEqual(updateManagedFields(stored, broken, { manager: 'b', apiVersion: 'apps/v1', time: T2, schema: deploymentType, schemas }), mf);
  assert.throws(() => decodeManagedFields([{ manager: 'a', operation: 'Update', apiVersion: 'v1' }]), /missing fieldsType/);
});
