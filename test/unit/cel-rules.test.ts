// CEL as the API server uses it: the Kubernetes libraries, CRD x-kubernetes-validations (with
// transition rules, messageExpression, reasons and field paths) through the in-process API, and
// ValidatingAdmissionPolicy with a ConfigMap param and its validationActions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, toCel, CelCompileError } from '../../src/apiserver/cel/evaluate.js';
import { validateCelRules, compileCelRules } from '../../src/apiserver/cel/crd-rules.js';
import { ApiError } from '../../src/api/status.js';
import { BUILTIN_KINDS } from '../../src/api/kinds.js';
import { Resources, type ResourceRef } from '../../src/client/types.js';
import { TEST_ACTOR, startLocalApi } from '../helpers/local-api.js';

const ev = (expr: string, vars: Record<string, unknown> = {}) => {
  const r = compile(expr)(Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, toCel(v)])));
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

test('CEL with the Kubernetes libraries', () => {
  const self = { spec: { replicas: 3, name: 'web-1', tags: ['a', 'b'], ports: [80, 443], limit: '2Gi', url: 'https://example.com:8443/x' } };
  assert.equal(ev('self.spec.replicas > 2 && self.spec.replicas < 4', { self }), true);
  assert.equal(ev('size(self.spec.tags) == 2 && self.spec.tags.all(t, t.size() == 1)', { self }), true);
  assert.equal(ev('has(self.spec.name) && !has(self.spec.missing)', { self }), true);
  assert.equal(ev("self.spec.name.matches('^[a-z]+-[0-9]+$')", { self }), true);
  assert.equal(ev("self.spec.name.find('[0-9]+')", { self }), '1');
  assert.equal(ev("self.spec.name.upperAscii() == 'WEB-1' && self.spec.name.split('-')[1] == '1'", { self }), true);
  assert.equal(ev('self.spec.ports.isSorted() && self.spec.ports.sum() == 523 && self.spec.ports.max() == 443', { self }), true);
  assert.equal(ev("quantity(self.spec.limit).isGreaterThan(quantity('1500Mi'))", { self }), true);
  assert.equal(ev("isQuantity('1Gi') && !isQuantity('one')"), true);
  assert.equal(ev("url(self.spec.url).getHost() == 'example.com:8443' && url(self.spec.url).getScheme() == 'https' && url(self.spec.url).getPort() == '8443'", { self }), true);
  assert.equal(ev("isURL('not a url') == false"), true);
  assert.equal(ev("self.spec.tags.exists_one(t, t == 'a') && 'b' in self.spec.tags", { self }), true);
  assert.throws(() => compile('self.spec.('), CelCompileError);
  const missing = compile('self.spec.nope == 1')({ self: toCel(self) });
  assert.equal(missing.ok, false);
});

const widgetSchema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      'x-kubernetes-validations': [
        { rule: 'self.replicas <= self.maxReplicas', message: 'replicas must not exceed maxReplicas' },
        { rule: "!has(self.mode) || self.mode == oldSelf.mode", message: 'mode is immutable', reason: 'FieldValueForbidden' },
        { rule: 'self.maxReplicas <= 100', messageExpression: "'maxReplicas is ' + string(self.maxReplicas) + ', at most 100'" },
      ],
      properties: {
        replicas: { type: 'integer' },
        maxReplicas: { type: 'integer' },
        mode: { type: 'string' },
        name: { type: 'string', 'x-kubernetes-validations': [{ rule: "self.startsWith('w-')" }] },
        items: { type: 'array', items: { type: 'object', properties: { v: { type: 'integer', 'x-kubernetes-validations': [{ rule: 'self >= 0', message: 'must be non-negative' }] } } } },
      },
    },
  },
  'x-kubernetes-validations': [{ rule: "self.metadata.name != 'banned'", message: 'this name is banned' }],
};

test('x-kubernetes-validations: messages, reasons, paths and transition rules', () => {
  const w = (spec: Record<string, unknown>, name = 'w') => ({ metadata: { name }, spec });
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2, name: 'w-a' })), []);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 3, maxReplicas: 2 })), [
    { reason: 'FieldValueInvalid', field: 'spec', message: 'Invalid value: "object": replicas must not exceed maxReplicas' },
  ]);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 200 })), [
    { reason: 'FieldValueInvalid', field: 'spec', message: 'Invalid value: "object": maxReplicas is 200, at most 100' },
  ]);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2, name: 'x' })), [
    { reason: 'FieldValueInvalid', field: 'spec.name', message: 'Invalid value: "string": failed rule: self.startsWith(\'w-\')' },
  ]);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2, items: [{ v: 1 }, { v: -1 }] })), [
    { reason: 'FieldValueInvalid', field: 'spec.items[1].v', message: 'Invalid value: "integer": must be non-negative' },
  ]);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2 }, 'banned')), [
    { reason: 'FieldValueInvalid', field: '<nil>', message: 'Invalid value: "object": this name is banned' },
  ]);
  // The transition rule runs only on update.
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2, mode: 'a' })), []);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2, mode: 'a' }), w({ replicas: 1, maxReplicas: 2, mode: 'a' })), []);
  assert.deepEqual(validateCelRules(widgetSchema as any, w({ replicas: 1, maxReplicas: 2, mode: 'b' }), w({ replicas: 1, maxReplicas: 2, mode: 'a' })), [
    { reason: 'FieldValueForbidden', field: 'spec', message: 'Forbidden: mode is immutable' },
  ]);
  assert.deepEqual(compileCelRules({ type: 'object', 'x-kubernetes-validations': [{ rule: 'self.(' }] } as any).map((c) => c.field),
    ['spec.validation.openAPIV3Schema.x-kubernetes-validations[0].rule']);
});

const WIDGETS: ResourceRef = { group: 'example.com', version: 'v1', resource: 'widgets' };

test('a CRD with rules accepts and rejects custom resources through the API', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.customResourceDefinitions, undefined, {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: widgetSchema } }],
    },
  } as any);
  // A rule that does not compile: the CRD is refused.
  await assert.rejects(client.create(Resources.customResourceDefinitions, undefined, {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'gadgets.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-validations': [{ rule: 'self.(' }] } } }],
    },
  } as any), /CustomResourceDefinition.apiextensions.k8s.io "gadgets.example.com" is invalid: spec.versions\[0\].schema.openAPIV3Schema.x-kubernetes-validations\[0\].rule: Invalid value: "self.\(": compilation failed/);
  const widget = (spec: Record<string, unknown>) => ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' }, spec });
  await assert.rejects(client.create(WIDGETS, 'default', widget({ replicas: 5, maxReplicas: 2 }) as any), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 422);
    assert.equal(e.message, 'Widget.example.com "w1" is invalid: spec: Invalid value: "object": replicas must not exceed maxReplicas');
    return true;
  });
  await client.create(WIDGETS, 'default', widget({ replicas: 1, maxReplicas: 2, mode: 'fast' }) as any);
  await client.update(WIDGETS, 'default', widget({ replicas: 2, maxReplicas: 2, mode: 'fast' }) as any);
  await assert.rejects(client.update(WIDGETS, 'default', widget({ replicas: 2, maxReplicas: 2, mode: 'slow' }) as any),
    /Widget.example.com "w1" is invalid: spec: Forbidden: mode is immutable/);
});

const VAP: ResourceRef = { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingadmissionpolicies' };
const VAPB: ResourceRef = { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingadmissionpolicybindings' };

test('ValidatingAdmissionPolicy with a ConfigMap param: Deny and Warn', async (t) => {
  const { client, objects } = await startLocalApi(t);
  const deploymentsInfo = BUILTIN_KINDS.find((k) => k.group === 'apps' && k.plural === 'deployments')!;
  await client.create(Resources.configMaps, 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'limits' }, data: { maxReplicas: '3' } } as any);
  await client.create(VAP, undefined, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', metadata: { name: 'max-replicas' },
    spec: {
      failurePolicy: 'Fail',
      paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
      matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'] }] },
      variables: [{ name: 'max', expression: 'int(params.data.maxReplicas)' }],
      validations: [{ expression: 'object.spec.replicas <= variables.max', messageExpression: "'replicas must be no greater than ' + string(variables.max)" }],
    },
  } as any);
  await client.create(VAPB, undefined, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'max-replicas-binding' },
    spec: { policyName: 'max-replicas', validationActions: ['Deny'], paramRef: { name: 'limits', namespace: 'default', parameterNotFoundAction: 'Deny' } },
  } as any);
  const deploy = (name: string, replicas: number) => ({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  });
  await objects.create(deploymentsInfo, 'default', deploy('small', 2), { actor: TEST_ACTOR });
  await assert.rejects(objects.create(deploymentsInfo, 'default', deploy('big', 5), { actor: TEST_ACTOR }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 422);
    assert.equal(e.message, "ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be no greater than 3");
    return true;
  });
  // Warn instead of Deny: admitted, with the warning for the client.
  await client.update(VAPB, undefined, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'max-replicas-binding' },
    spec: { policyName: 'max-replicas', validationActions: ['Warn'], paramRef: { name: 'limits', namespace: 'default', parameterNotFoundAction: 'Deny' } },
  } as any);
  const r = await objects.create(deploymentsInfo, 'default', deploy('big', 5), { actor: TEST_ACTOR });
  assert.deepEqual(r.warnings, ["Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding': replicas must be no greater than 3"]);
  // A missing param with parameterNotFoundAction Deny denies.
  await client.delete(Resources.configMaps, 'default', 'limits');
  await client.update(VAPB, undefined, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'max-replicas-binding' },
    spec: { policyName: 'max-replicas', validationActions: ['Deny'], paramRef: { name: 'limits', namespace: 'default', parameterNotFoundAction: 'Deny' } },
  } as any);
  await assert.rejects(objects.create(deploymentsInfo, 'default', deploy('small2', 1), { actor: TEST_ACTOR }),
    /ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed to configure binding: no params found/);
});
