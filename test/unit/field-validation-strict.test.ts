import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSchemaSet } from '../../src/api/schema.js';
import {
  checkFields, decodeErrorMessage, findTypeErrors, findUnknownFields, pruneUnknownFields, strictDecodingMessage,
  validateAgainstOpenApiSchema, type OpenApiSchema,
} from '../../src/apiserver/field-validation.js';

const schemas = loadSchemaSet();
const deployment = schemas.forKind('apps', 'v1', 'Deployment')!;

function deploy(container: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas: 2, selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx', ...container }] } },
      ...extra,
    },
  };
}

test('a valid Deployment has no unknown fields and no type errors', () => {
  const obj = deploy({
    ports: [{ containerPort: 80 }], resources: { limits: { cpu: 1, memory: '64Mi' } },
    livenessProbe: { httpGet: { port: 'http', path: '/' } }, env: [{ name: 'A', value: 'b' }],
  }, { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } } });
  assert.deepEqual(checkFields(obj, deployment, schemas), { unknown: [], typeErrors: [] });
});

test('unknown fields are reported with their full paths', () => {
  const obj = deploy({ imagePullPolicyy: 'Always' }, { foo: 1 }) as Record<string, any>;
  obj.metadata.labelz = {};
  obj.bogus = true;
  assert.deepEqual(findUnknownFields(obj, deployment, schemas).sort(), [
    'bogus', 'metadata.labelz', 'spec.foo', 'spec.template.spec.containers[0].imagePullPolicyy',
  ]);
  assert.equal(strictDecodingMessage(['spec.foo', 'spec.bar']),
    'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"');
});

test('open fields (RawExtension, JSON) accept anything', () => {
  const rev = schemas.forKind('apps', 'v1', 'ControllerRevision')!;
  assert.deepEqual(findUnknownFields({ metadata: { name: 'r' }, revision: 1, data: { anything: { goes: 1 } } }, rev, schemas), []);
});

test('JSON type mismatches read like Go decoder errors', () => {
  const obj = deploy({ image: 5 }, { replicas: 'two' });
  const errs = findTypeErrors(obj, deployment, schemas);
  assert.deepEqual(errs.map((e) => e.field), ['spec.replicas', 'spec.template.spec.containers[0].image']);
  assert.equal(errs[0].message, 'json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32');
  assert.equal(errs[1].message, 'json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string');
  assert.equal(decodeErrorMessage('Deployment', 'v1', errs[0]),
    'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32');
  const labels = findTypeErrors({ metadata: { labels: { a: 1 } } }, deployment, schemas);
  assert.equal(labels[0].message, 'json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string');
  assert.equal(findTypeErrors(deploy({}, { replicas: 1.5 }), deployment, schemas)[0].message,
    'json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32');
  assert.deepEqual(findTypeErrors(deploy({ ports: null }), deployment, schemas), [], 'null decodes as the zero value');
});

const crd: OpenApiSchema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object', required: ['size'],
      properties: {
        size: { type: 'integer', minimum: 1, maximum: 10 },
        mode: { type: 'string', enum: ['fast', 'slow'] },
        name: { type: 'string', pattern: '^[a-z]+$', maxLength: 5 },
        port: { 'x-kubernetes-int-or-string': true },
        tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
        extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        limits: { type: 'object', additionalProperties: { type: 'number' } },
        opt: { type: 'string', nullable: true },
      },
    },
  },
};

test('CRD schema: a valid object passes', () => {
  const r = validateAgainstOpenApiSchema({
    apiVersion: 'x/v1', kind: 'K', metadata: { name: 'a', whatever: 1 },
    spec: { size: 3, mode: 'fast', name: 'abc', port: 'http', tags: ['a'], extra: { free: { form: 1 } }, limits: { cpu: 0.5 }, opt: null },
  }, crd);
  assert.deepEqual(r, { causes: [], unknownFields: [] });
});

test('CRD schema: causes are worded like Kubernetes', () => {
  const r = validateAgainstOpenApiSchema({ spec: { size: 'string', mode: 'medium', name: 'ABCDEFG', port: true, tags: ['a', 'b', 'c'], bogus: 1 } }, crd);
  const byField = Object.fromEntries(r.causes.map((c) => [`${c.field}|${c.reason}`, c.message]));
  assert.equal(byField['spec.size|FieldValueTypeInvalid'], 'Invalid value: "string": spec.size in body must be of type integer: "string"');
  assert.equal(byField['spec.mode|FieldValueNotSupported'], 'Unsupported value: "medium": supported values: "fast", "slow"');
  assert.equal(byField['spec.name|FieldValueTooLong'], 'Too long: may not be more than 5 bytes');
  assert.equal(byField['spec.name|FieldValueInvalid'], 'Invalid value: "ABCDEFG": spec.name in body should match \'^[a-z]+$\'');
  assert.deepEqual(r.causes.filter((c) => c.field === 'spec.port').map((c) => c.message), [
    'Invalid value: "boolean": spec.port in body must be of type integer: "boolean"',
    'Invalid value: "boolean": spec.port in body must be of type string: "boolean"',
  ]);
  assert.equal(byField['spec.tags|FieldValueTooMany'], 'Too many: 3: must have at most 2 items');
  assert.deepEqual(r.unknownFields, ['spec.bogus']);

  const missing = validateAgainstOpenApiSchema({ spec: { size: 0, limits: { cpu: 'x' } } }, crd);
  assert.deepEqual(missing.causes.map((c) => [c.field, c.message]), [
    ['spec.size', 'Invalid value: 0: spec.size in body should be greater than or equal to 1'],
    ['spec.limits.cpu', 'Invalid value: "string": spec.limits.cpu in body must be of type number: "string"'],
  ]);
  const req = validateAgainstOpenApiSchema({ spec: {} }, crd);
  assert.deepEqual(req.causes, [{ reason: 'FieldValueRequired', field: 'spec.size', message: 'Required value' }]);
  const arrays = validateAgainstOpenApiSchema({ spec: { size: 1, tags: [1] } }, crd);
  assert.equal(arrays.causes[0].field, 'spec.tags[0]');
});

test('CRD pruning drops undeclared fields and keeps preserved and type metadata', () => {
  const obj = {
    apiVersion: 'x/v1', kind: 'K', metadata: { name: 'a' }, junk: 1,
    spec: { size: 1, bogus: 2, extra: { kept: true }, limits: { cpu: 1 } }, status: { x: 1 },
  };
  const pruned = pruneUnknownFields(obj, crd);
  assert.deepEqual(pruned.sort(), ['junk', 'spec.bogus', 'status']);
  assert.deepEqual(obj, { apiVersion: 'x/v1', kind: 'K', metadata: { name: 'a' }, spec: { size: 1, extra: { kept: true }, limits: { cpu: 1 } } });
});
