import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { buildSchemaSet, loadSchemaDocs, loadSchemaSet } from '../../src/api/schema.js';

// That the committed files are what the generator writes is scripts/check-generated.mjs's job (run
// before the unit tests); its time is printed by `node scripts/gen-schemas.mjs`, not asserted.
test('the generated schema files are there and schemas.json stays small', () => {
  assert.ok(statSync('generated/schema-docs.json').isFile());
  assert.ok(statSync('generated/schemas.json').size < 400_000, 'schemas.json stays small');
});

test('a Deployment is a top-level kind whose spec holds a pod template', () => {
  const s = loadSchemaSet();
  const d = s.forKind('apps', 'v1', 'Deployment');
  assert.equal(d?.name, 'V1Deployment');
  assert.deepEqual(d.gvk, [{ group: 'apps', version: 'v1', kind: 'Deployment' }]);
  assert.deepEqual(d.properties.spec, { kind: 'object', ref: 'V1DeploymentSpec' });
  assert.deepEqual(s.type('V1DeploymentSpec')!.required, ['selector', 'template']);
  assert.equal(s.forKind('apps', 'v1', 'DeploymentList')?.name, 'V1DeploymentList');
  assert.equal(s.forKind('', 'v1', 'Event')?.name, 'CoreV1Event');
});

test('field kinds: integers, maps, dates, int-or-string, quantities', () => {
  const s = loadSchemaSet();
  assert.deepEqual(s.type('V1DeploymentSpec')!.properties.replicas, { kind: 'integer', format: 'int32' });
  assert.deepEqual(s.type('V1ObjectMeta')!.properties.labels, { kind: 'map', values: { kind: 'string' } });
  assert.deepEqual(s.type('V1ObjectMeta')!.properties.creationTimestamp, { kind: 'date-time' });
  assert.deepEqual(s.type('V1ContainerPort')!.required, ['containerPort']);
  assert.equal(s.type('V1HTTPGetAction')!.properties.port.kind, 'int-or-string');
  assert.deepEqual(s.type('V1ResourceRequirements')!.properties.limits, { kind: 'map', values: { kind: 'quantity' } });
  assert.equal(s.type('V1ControllerRevision')!.properties.data.kind, 'any');
});

test('patch metadata is folded into the fields', () => {
  const s = loadSchemaSet();
  const containers = s.type('V1PodSpec')!.properties.containers;
  assert.equal(containers.kind, 'array');
  assert.deepEqual(containers.items, { kind: 'object', ref: 'V1Container' });
  assert.equal(containers.patchStrategy, 'merge');
  assert.equal(containers.patchMergeKey, 'name');
  assert.equal(containers.listType, 'map');
  assert.deepEqual(containers.listMapKeys, ['name']);
  assert.equal(s.type('V1PodSpec')!.properties.volumes.patchStrategy, 'merge,retainKeys');
  assert.deepEqual(s.type('V1Container')!.properties.ports.listMapKeys, ['containerPort', 'protocol']);
  assert.equal(s.type('V1ServiceSpec')!.properties.ports.patchMergeKey, 'port');
  const meta = s.type('V1ObjectMeta')!.properties;
  assert.equal(meta.finalizers.patchStrategy, 'merge');
  assert.equal(meta.finalizers.listType, 'set');
  assert.equal(meta.ownerReferences.patchMergeKey, 'uid');
  assert.equal(s.type('V1DeploymentSpec')!.properties.strategy.patchStrategy, 'retainKeys');
  assert.equal(s.type('V1DeploymentSpec')!.properties.selector.mapType, 'atomic');
  assert.equal(s.type('V1PodSpec')!.properties.nodeSelector.mapType, 'atomic');
  assert.equal(s.type('V1NodeSpec')!.properties.taints.patchStrategy, undefined);
  assert.equal(s.type('V1PodStatus')!.properties.conditions.patchMergeKey, 'type');
});

test('descriptions and OpenAPI names are loaded apart', () => {
  const docs = loadSchemaDocs();
  assert.match(docs.descriptions.V1Deployment[''], /declarative updates/);
  assert.match(docs.descriptions.V1Container.image, /Container image name/);
  assert.equal(docs.openApiNames.V1Deployment, 'io.k8s.api.apps.v1.Deployment');
  assert.equal(docs.openApiNames.V1PodSpec, 'io.k8s.api.core.v1.PodSpec');
  assert.equal(docs.openApiNames.V1ObjectMeta, 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta');
  assert.equal(docs.openApiNames.RbacV1Subject, 'io.k8s.api.rbac.v1.Subject');
});

test('buildSchemaSet indexes hand-made types by kind', () => {
  const s = buildSchemaSet({ X: { properties: { a: { kind: 'string' } }, required: [], gvk: [{ group: 'g', version: 'v1', kind: 'X' }] } });
  assert.equal(s.forKind('g', 'v1', 'X')?.name, 'X');
  assert.equal(s.forKind('g', 'v2', 'X'), undefined);
  assert.equal([...s.allTypes()].length, 1);
});
