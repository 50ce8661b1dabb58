import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestInfo } from '../../src/apiserver/request-info.js';
import { parseLabelSelector, labelPredicate, parseFieldSelector, fieldPredicate, matchLabelSelectorObject } from '../../src/api/selectors.js';
import { ResourceRegistry, compareVersions, objectKey, collectionPrefix } from '../../src/apiserver/registry.js';
import { ApiError } from '../../src/api/status.js';
import { selectorString } from '../../src/apiserver/label-selector-string.js';

const q = (s = '') => new URLSearchParams(s);

test('request info: namespaced, cluster-scoped, subresources, verbs', () => {
  let ri = parseRequestInfo('GET', '/api/v1/namespaces/default/pods', q());
  assert.deepEqual([ri.isResourceRequest, ri.verb, ri.group, ri.version, ri.resource, ri.namespace, ri.name], [true, 'list', '', 'v1', 'pods', 'default', '']);
  ri = parseRequestInfo('GET', '/api/v1/namespaces/default/pods', q('watch=true'));
  assert.equal(ri.verb, 'watch');
  ri = parseRequestInfo('GET', '/api/v1/watch/namespaces/default/pods', q());
  assert.equal(ri.verb, 'watch');
  ri = parseRequestInfo('GET', '/api/v1/pods', q('watch=0'));
  assert.equal(ri.verb, 'list');
  ri = parseRequestInfo('PATCH', '/apis/apps/v1/namespaces/x/deployments/web/scale', q());
  assert.deepEqual([ri.verb, ri.group, ri.resource, ri.name, ri.subresource, ri.namespace], ['patch', 'apps', 'deployments', 'web', 'scale', 'x']);
  ri = parseRequestInfo('GET', '/api/v1/namespaces/kube-system', q());
  assert.deepEqual([ri.verb, ri.resource, ri.name, ri.namespace], ['get', 'namespaces', 'kube-system', 'kube-system']);
  ri = parseRequestInfo('PUT', '/api/v1/namespaces/x/finalize', q());
  assert.deepEqual([ri.verb, ri.resource, ri.name, ri.subresource], ['update', 'namespaces', 'x', 'finalize']);
  ri = parseRequestInfo('DELETE', '/api/v1/namespaces/x/configmaps', q());
  assert.equal(ri.verb, 'deletecollection');
  ri = parseRequestInfo('GET', '/apis/apps/v1', q());
  assert.equal(ri.isResourceRequest, false);
  ri = parseRequestInfo('GET', '/healthz', q());
  assert.equal(ri.isResourceRequest, false);
});

test('label selectors: parse and match, errors are 400s', () => {
  const m = (sel: string, labels: Record<string, string> | undefined) => labelPredicate(parseLabelSelector(sel))!(labels);
  assert.equal(m('app=web', { app: 'web' }), true);
  assert.equal(m('app==web,tier!=db', { app: 'web', tier: 'fe' }), true);
  assert.equal(m('app=web,tier!=db', { app: 'web', tier: 'db' }), false);
  assert.equal(m('env in (a, b)', { env: 'b' }), true);
  assert.equal(m('env notin (a,b)', { env: 'c' }), true);
  assert.equal(m('env notin (a,b)', undefined), true);
  assert.equal(m('canary', { canary: '' }), true);
  assert.equal(m('!canary', { canary: '' }), false);
  assert.equal(m('example.com/role=x', { 'example.com/role': 'x' }), true);
  assert.equal(labelPredicate(parseLabelSelector('')), undefined);
  for (const bad of ['!!!', 'a=b=c', 'a in (x', '=x', 'a=-bad-']) {
    assert.throws(() => parseLabelSelector(bad), (e: unknown) => e instanceof ApiError && e.code === 400, bad);
  }
});

test('field selectors: supported fields per resource, others rejected', () => {
  const p = fieldPredicate(parseFieldSelector('spec.nodeName=n1,status.phase!=Failed'), '/pods')!;
  assert.equal(p({ metadata: {}, spec: { nodeName: 'n1' }, status: { phase: 'Running' } }), true);
  assert.equal(p({ metadata: {}, spec: { nodeName: 'n2' }, status: { phase: 'Running' } }), false);
  assert.throws(() => fieldPredicate(parseFieldSelector('foo=bar'), '/pods'), /field label not supported: foo/);
  assert.throws(() => parseFieldSelector('junk'), (e: unknown) => e instanceof ApiError && e.code === 400);
  const n = fieldPredicate(parseFieldSelector('spec.unschedulable=false'), '/nodes')!;
  assert.equal(n({ metadata: {}, spec: {} }), true);
});

test('LabelSelector objects and their string form', () => {
  const sel = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['b', 'a'] }, { key: 'x', operator: 'DoesNotExist' }] };
  assert.equal(matchLabelSelectorObject(sel, { app: 'web', tier: 'a' }), true);
  assert.equal(matchLabelSelectorObject(sel, { app: 'web', tier: 'a', x: '1' }), false);
  assert.equal(selectorString(sel), 'app=web,tier in (a,b),!x');
});

test('registry: lookup, versions order, keys', () => {
  const r = new ResourceRegistry();
  const d = r.lookup('apps', 'v1', 'deployments')!;
  assert.equal(d.kind, 'Deployment');
  assert.equal(objectKey(d, 'ns1', 'web'), '/apps/deployments/ns1/web');
  assert.equal(collectionPrefix(d), '/apps/deployments/');
  const hpa1 = r.lookup('autoscaling', 'v1', 'horizontalpodautoscalers')!;
  assert.equal(collectionPrefix(hpa1, 'a'), '/autoscaling/horizontalpodautoscalers/a/');
  assert.deepEqual(r.groups().find((g) => g.group === 'autoscaling')!.versions, ['v2', 'v1']);
  assert.equal(r.groups()[0].group, '');
  assert.deepEqual(['v1beta1', 'v1', 'v2', 'v1alpha1', 'v2beta2'].sort(compareVersions), ['v2', 'v1', 'v2beta2', 'v1beta1', 'v1alpha1']);
  let changed = 0;
  r.onChange(() => changed++);
  r.setCrd('crontabs.stable.example.com', [{ ...d, group: 'stable.example.com', kind: 'CronTab', plural: 'crontabs', crd: true }]);
  assert.equal(changed, 1);
  assert.ok(r.lookup('stable.example.com', 'v1', 'crontabs'));
  r.setCrd('crontabs.stable.example.com', []);
  assert.equal(r.lookup('stable.example.com', 'v1', 'crontabs'), undefined);
});
