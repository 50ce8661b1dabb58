import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_KINDS, type KindInfo } from '../../src/api/kinds.js';
import { loadSchemaSet } from '../../src/api/schema.js';
import { OpenApiV3 } from '../../src/apiserver/openapi.js';

const crontab: KindInfo = {
  group: 'stable.example.com', version: 'v1', kind: 'CronTab', plural: 'crontabs', singular: 'crontab',
  namespaced: true, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], modelType: '', crd: true,
};
const api = new OpenApiV3(() => [...BUILTIN_KINDS, crontab], loadSchemaSet(), (g, v, k) =>
  (k === 'CronTab' ? { type: 'object', properties: { spec: { type: 'object', properties: { cronSpec: { type: 'string' } } } } } : undefined));

test('the index lists each group-version with a hashed URL', () => {
  const { paths } = api.index();
  assert.match(paths['api/v1'].serverRelativeURL, /^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]{128}$/);
  assert.ok(paths['apis/apps/v1']);
  assert.ok(paths['apis/stable.example.com/v1']);
  assert.equal(paths['apis/apps/v1'].serverRelativeURL, `/openapi/v3/apis/apps/v1?hash=${api.get('apis/apps/v1')!.hash}`);
  assert.equal(api.get('apis/nope/v1'), undefined);
});

test('PATCH on a Deployment names its kind and takes fieldValidation (kubectl then validates on the server)', () => {
  const doc = api.document('apis/apps/v1') as any;
  assert.equal(doc.openapi, '3.0.0');
  const patch = doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'].patch;
  assert.deepEqual(patch['x-kubernetes-group-version-kind'], { group: 'apps', version: 'v1', kind: 'Deployment' });
  assert.equal(patch['x-kubernetes-action'], 'patch');
  assert.equal(patch.operationId, 'patchAppsV1NamespacedDeployment');
  assert.deepEqual(patch.parameters.map((p: any) => p.name), ['dryRun', 'fieldManager', 'fieldValidation', 'force']);
  assert.deepEqual(Object.keys(patch.requestBody.content).sort(), [
    'application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json',
  ]);
  const coll = doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments'];
  assert.ok(coll.get && coll.post && coll.delete);
  assert.equal(coll.post.parameters.find((p: any) => p.name === 'fieldValidation').in, 'query');
  const item = doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'];
  assert.ok(item.get && item.put && item.delete);
  assert.ok(doc.paths['/apis/apps/v1/deployments'].get);
  assert.deepEqual(doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale'].patch['x-kubernetes-group-version-kind'],
    { group: 'autoscaling', version: 'v1', kind: 'Scale' });
});

test('components carry kinds, references, descriptions and patch extensions (kubectl explain)', () => {
  const schemas = (api.document('apis/apps/v1') as any).components.schemas;
  const d = schemas['io.k8s.api.apps.v1.Deployment'];
  assert.deepEqual(d['x-kubernetes-group-version-kind'], [{ group: 'apps', version: 'v1', kind: 'Deployment' }]);
  assert.match(d.description, /declarative updates/);
  assert.deepEqual(d.properties.spec, { $ref: '#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec' });
  assert.deepEqual(schemas['io.k8s.api.core.v1.PodTemplateSpec'].properties.metadata, { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' });
  const containers = schemas['io.k8s.api.core.v1.PodSpec'].properties.containers;
  assert.equal(containers['x-kubernetes-patch-merge-key'], 'name');
  assert.equal(containers['x-kubernetes-list-type'], 'map');
  assert.deepEqual(containers.items, { $ref: '#/components/schemas/io.k8s.api.core.v1.Container' });
  assert.deepEqual(schemas['io.k8s.api.apps.v1.DeploymentSpec'].required, ['selector', 'template']);
  // every reference resolves inside the document
  const refs = JSON.stringify(schemas).match(/#\/components\/schemas\/[^"]+/g)!;
  for (const r of new Set(refs)) assert.ok(schemas[r.slice('#/components/schemas/'.length)], r);
});

test('custom resources: their schema, typed metadata, no strategic merge', () => {
  const doc = api.document('apis/stable.example.com/v1') as any;
  const s = doc.components.schemas['com.example.stable.v1.CronTab'];
  assert.deepEqual(s['x-kubernetes-group-version-kind'], [{ group: 'stable.example.com', version: 'v1', kind: 'CronTab' }]);
  assert.equal(s.properties.spec.properties.cronSpec.type, 'string');
  assert.deepEqual(s.properties.metadata.allOf, [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }]);
  const patch = doc.paths['/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}'].patch;
  assert.ok(!('application/strategic-merge-patch+json' in patch.requestBody.content));
  assert.ok(patch.parameters.some((p: any) => p.name === 'fieldValidation'));
});

test('documents are cached until invalidated', () => {
  const a = api.get('apis/stable.example.com/v1');
  assert.equal(api.get('apis/stable.example.com/v1'), a);
  api.invalidate('stable.example.com');
  assert.notEqual(api.get('apis/stable.example.com/v1'), a);
  assert.equal(api.get('apis/stable.example.com/v1')!.hash, a!.hash);
});
