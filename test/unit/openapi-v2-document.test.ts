import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { BUILTIN_KINDS, type KindInfo } from '../../src/api/kinds.js';
import { loadSchemaSet } from '../../src/api/schema.js';
import { OpenApiV3 } from '../../src/apiserver/openapi.js';
import { OpenApiV2 } from '../../src/apiserver/openapi-v2.js';
import { openApiV2DocumentType } from '../../src/apiserver/openapi-v2-proto.js';
import type { OpenApiSchema } from '../../src/apiserver/field-validation.js';

const crontab: KindInfo = {
  group: 'stable.example.com', version: 'v1', kind: 'CronTab', plural: 'crontabs', singular: 'crontab',
  namespaced: true, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], modelType: '', crd: true,
};

let cronSchema: OpenApiSchema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object', required: ['cronSpec', 'note'],
      properties: {
        cronSpec: { type: 'string' },
        note: { type: 'string', nullable: true },
        config: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { a: { type: 'string' } } },
        port: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
      },
    },
  },
};
const v3 = new OpenApiV3(() => [...BUILTIN_KINDS, crontab], loadSchemaSet(), (_g, _v, k) => (k === 'CronTab' ? cronSchema : undefined));
const v2 = new OpenApiV2(v3);
const doc = v2.document();
const DEPLOY_ITEM = '/apis/apps/v1/namespaces/{namespace}/deployments/{name}';

/** A schema and the schemas inside it (JSONSchemaProps has a property named `$ref`, so structure, not keys, decides). */
function* schemaTree(s: Record<string, any>): Generator<Record<string, any>> {
  yield s;
  for (const p of Object.values(s.properties ?? {})) yield* schemaTree(p as Record<string, any>);
  if (s.items) yield* schemaTree(s.items);
  if (typeof s.additionalProperties === 'object') yield* schemaTree(s.additionalProperties);
}

/** Every schema in the document: definitions, body parameters and responses. */
function* schemas(): Generator<Record<string, any>> {
  for (const d of Object.values(doc.definitions)) yield* schemaTree(d as Record<string, any>);
  for (const item of Object.values(doc.paths) as any[]) {
    for (const op of Object.values(item) as any[]) {
      if (Array.isArray(op)) continue;   // path-level parameters
      for (const p of op.parameters ?? []) if (p.schema) yield* schemaTree(p.schema);
      for (const r of Object.values(op.responses ?? {}) as any[]) if (r.schema) yield* schemaTree(r.schema);
    }
  }
}

test('one Swagger 2.0 document names every kind by its Kubernetes definition name and GVK', () => {
  assert.equal(doc.swagger, '2.0');
  const deployment = doc.definitions['io.k8s.api.apps.v1.Deployment'];
  assert.deepEqual(deployment['x-kubernetes-group-version-kind'], [{ group: 'apps', version: 'v1', kind: 'Deployment' }]);
  assert.deepEqual(doc.definitions['io.k8s.api.core.v1.Pod']['x-kubernetes-group-version-kind'], [{ group: '', version: 'v1', kind: 'Pod' }]);
  assert.deepEqual(doc.definitions['com.example.stable.v1.CronTab']['x-kubernetes-group-version-kind'],
    [{ group: 'stable.example.com', version: 'v1', kind: 'CronTab' }]);
  // v3's `allOf: [{$ref}]` wrapper becomes a plain ref with its description or extensions beside it.
  const divisor = doc.definitions['io.k8s.api.core.v1.ResourceFieldSelector'].properties.divisor;
  assert.deepEqual(divisor, { $ref: '#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity', description: divisor.description });
  assert.match(divisor.description, /output format/);
  assert.deepEqual(doc.definitions['io.k8s.api.apps.v1.DeploymentSpec'].properties.strategy,
    { $ref: '#/definitions/io.k8s.api.apps.v1.DeploymentStrategy', 'x-kubernetes-patch-strategy': 'retainKeys' });
});

test('every ref resolves and every schema is one kubectl\'s v2 parser accepts', () => {
  let refs = 0;
  for (const s of schemas()) {
    if (s.$ref !== undefined) {
      refs++;
      assert.match(s.$ref, /^#\/definitions\//);
      assert.ok(doc.definitions[s.$ref.slice('#/definitions/'.length)], `dangling ${s.$ref}`);
      assert.equal(s.type, undefined, `a ref with a type: ${s.$ref}`);
    }
    assert.equal(s.allOf, undefined);
    assert.equal(s.anyOf, undefined);
    if (s.type === 'array') assert.ok(s.items, 'an array without items');
  }
  assert.ok(refs > 1000, `only ${refs} refs`);
});

test('strategic merge metadata is kept on the fields', () => {
  const containers = doc.definitions['io.k8s.api.core.v1.PodSpec'].properties.containers;
  assert.equal(containers.type, 'array');
  assert.equal(containers.items.$ref, '#/definitions/io.k8s.api.core.v1.Container');
  assert.equal(containers['x-kubernetes-patch-merge-key'], 'name');
  assert.equal(containers['x-kubernetes-patch-strategy'], 'merge');
  const ports = doc.definitions['io.k8s.api.core.v1.Container'].properties.ports;
  assert.equal(ports['x-kubernetes-patch-merge-key'], 'containerPort');
});

test('operations are in v2 form: typed query parameters, a body parameter, consumes and produces', () => {
  const patch = doc.paths[DEPLOY_ITEM].patch;
  assert.deepEqual(patch['x-kubernetes-group-version-kind'], { group: 'apps', version: 'v1', kind: 'Deployment' });
  assert.equal(patch.operationId, 'patchAppsV1NamespacedDeployment');
  assert.deepEqual(patch.parameters.map((p: any) => `${p.in}:${p.name}`),
    ['body:body', 'query:dryRun', 'query:fieldManager', 'query:fieldValidation', 'query:force']);
  assert.deepEqual(patch.parameters[0].schema, { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch' });
  assert.equal(patch.parameters[4].type, 'boolean');
  assert.ok(patch.consumes.includes('application/strategic-merge-patch+json'));
  assert.ok(patch.produces.includes('application/json'));
  assert.deepEqual(patch.responses['200'].schema, { $ref: '#/definitions/io.k8s.api.apps.v1.Deployment' });
  assert.deepEqual(doc.paths[DEPLOY_ITEM].parameters.map((p: any) => `${p.in}:${p.name}:${p.required === true}`),
    ['path:name:true', 'path:namespace:true', 'query:pretty:false']);
  assert.equal(doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments'].post.parameters[0].in, 'body');
});

test('CRD schemas are reduced the way kube-apiserver reduces them for v2', () => {
  const spec = doc.definitions['com.example.stable.v1.CronTab'].properties.spec;
  assert.deepEqual(spec.required, ['cronSpec'], 'a nullable field is not required in v2');
  assert.deepEqual(spec.properties.note, {}, 'nullable loses its type');
  assert.deepEqual(spec.properties.config, { 'x-kubernetes-preserve-unknown-fields': true });
  assert.deepEqual(spec.properties.port, { 'x-kubernetes-int-or-string': true });
});

test('the protobuf form decodes back to the same document', () => {
  const bytes = v2.protobuf();
  const msg = openApiV2DocumentType().toObject(openApiV2DocumentType().decode(bytes), { longs: Number }) as any;
  assert.equal(msg.swagger, '2.0');
  const defs = msg.definitions.additional_properties;
  assert.deepEqual(defs.map((d: any) => d.name), Object.keys(doc.definitions));
  const deployment = defs.find((d: any) => d.name === 'io.k8s.api.apps.v1.Deployment').value;
  assert.deepEqual(deployment.type.value, ['object']);
  const gvk = deployment.vendor_extension.find((e: any) => e.name === 'x-kubernetes-group-version-kind');
  assert.deepEqual(parseYaml(gvk.value.yaml), [{ group: 'apps', version: 'v1', kind: 'Deployment' }]);
  const podSpec = defs.find((d: any) => d.name === 'io.k8s.api.core.v1.PodSpec').value;
  const containers = podSpec.properties.additional_properties.find((p: any) => p.name === 'containers').value;
  assert.equal(containers.items.schema[0]._ref, '#/definitions/io.k8s.api.core.v1.Container');
  assert.deepEqual(Object.fromEntries(containers.vendor_extension.map((e: any) => [e.name, parseYaml(e.value.yaml)])), {
    'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name',
    'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
  });

  const paths = msg.paths.path;
  assert.deepEqual(paths.map((p: any) => p.name), Object.keys(doc.paths));
  const patch = paths.find((p: any) => p.name === DEPLOY_ITEM).value.patch;
  const query = patch.parameters.map((p: any) => p.parameter.non_body_parameter?.query_parameter_sub_schema?.name).filter(Boolean);
  assert.deepEqual(query, ['dryRun', 'fieldManager', 'fieldValidation', 'force']);
  assert.equal(patch.parameters[0].parameter.body_parameter.schema._ref, '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch');
  assert.equal(patch.responses.response_code.find((r: any) => r.name === '200').value.response.schema.schema._ref,
    '#/definitions/io.k8s.api.apps.v1.Deployment');
  assert.deepEqual(parseYaml(patch.vendor_extension.find((e: any) => e.name === 'x-kubernetes-group-version-kind').value.yaml),
    { group: 'apps', version: 'v1', kind: 'Deployment' });
});

// ---- the wire format, read without our .proto text, so a wrong field number cannot hide ----

interface WireField { no: number; bytes?: Buffer; varint?: number }

function readVarint(buf: Buffer, pos: { at: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos.at++];
    result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return result;
    shift += 7;
  }
}

function fields(buf: Buffer): WireField[] {
  const out: WireField[] = [];
  const pos = { at: 0 };
  while (pos.at < buf.length) {
    const tag = readVarint(buf, pos);
    const no = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0: out.push({ no, varint: readVarint(buf, pos) }); break;
      case 1: pos.at += 8; out.push({ no }); break;
      case 2: { const len = readVarint(buf, pos); out.push({ no, bytes: buf.subarray(pos.at, pos.at + len) }); pos.at += len; break; }
      case 5: pos.at += 4; out.push({ no }); break;
      default: throw new Error(`wire type ${tag & 7}`);
    }
  }
  return out;
}

const field = (buf: Buffer, no: number) => fields(buf).filter((f) => f.no === no).map((f) => f.bytes!);
const text = (buf: Buffer, no: number) => field(buf, no)[0]?.toString('utf8');
/** gnostic's Named* pair: name = 1, value = 2. */
const namedValue = (list: Buffer[], name: string) => list.map((b) => ({ name: text(b, 1), value: field(b, 2)[0] })).find((n) => n.name === name)?.value;

test('field numbers are gnostic\'s (Document, Definitions, Schema, NamedAny, Any)', () => {
  const bytes = v2.protobuf();
  assert.equal(text(bytes, 1), '2.0');                                 // Document.swagger = 1
  assert.equal(text(field(bytes, 2)[0], 1), 'Kubernetes');             // Document.info = 2, Info.title = 1
  const definitions = field(field(bytes, 9)[0], 1);                    // Document.definitions = 9, Definitions.additional_properties = 1
  const deployment = namedValue(definitions, 'io.k8s.api.apps.v1.Deployment')!;
  assert.equal(text(field(deployment, 22)[0], 1), 'object');           // Schema.type = 22, TypeItem.value = 1
  const gvk = namedValue(field(deployment, 31), 'x-kubernetes-group-version-kind')!; // Schema.vendor_extension = 31
  assert.deepEqual(parseYaml(text(gvk, 2)), [{ group: 'apps', version: 'v1', kind: 'Deployment' }]); // Any.yaml = 2
  const props = field(field(deployment, 25)[0], 1);                    // Schema.properties = 25
  assert.equal(text(namedValue(props, 'spec')!, 1), '#/definitions/io.k8s.api.apps.v1.DeploymentSpec'); // Schema._ref = 1

  const paths = field(field(bytes, 8)[0], 2);                          // Document.paths = 8, Paths.path = 2
  const patch = field(namedValue(paths, DEPLOY_ITEM)!, 8)[0];          // PathItem.patch = 8
  assert.equal(text(patch, 5), 'patchAppsV1NamespacedDeployment');     // Operation.operation_id = 5
  const names = field(patch, 8).map((item) => {                        // Operation.parameters = 8
    const param = field(item, 1)[0];                                   // ParametersItem.parameter = 1
    const nonBody = field(param, 2)[0];                                // Parameter.non_body_parameter = 2
    return nonBody && text(field(nonBody, 3)[0], 4);                   // query_parameter_sub_schema = 3, name = 4
  }).filter(Boolean);
  assert.ok(names.includes('fieldValidation'));
});

test('built lazily and once; rebuilt when a v3 document changes or on invalidate()', () => {
  const api = new OpenApiV2(v3);
  assert.equal(api.stats(), undefined, 'nothing is built before the first request');
  const etag = api.etag();
  const json = api.json();
  assert.equal(api.json(), json, 'cached');
  assert.equal(api.protobuf(), api.protobuf(), 'encoded once');
  const stats = api.stats()!;
  assert.ok(stats.jsonBytes > 100_000 && stats.protobufBytes! > 100_000, JSON.stringify(stats));

  const before = cronSchema;
  try {
    cronSchema = { type: 'object', properties: { spec: { type: 'object', properties: { schedule: { type: 'string' } } } } };
    assert.equal(api.etag(), etag, 'v3 still serves its cached documents');
    v3.invalidate('stable.example.com');
    assert.notEqual(api.etag(), etag, 'a CRD change reaches v2 through the v3 hashes');
    assert.ok(api.document().definitions['com.example.stable.v1.CronTab'].properties.spec.properties.schedule);
  } finally {
    cronSchema = before;
    v3.invalidate('stable.example.com');
  }
  assert.equal(api.etag(), etag);
  const doc1 = api.document();
  api.invalidate();
  assert.notEqual(api.document(), doc1, 'invalidate() forces a rebuild');
  assert.equal(api.etag(), etag, 'of the same content');
});
