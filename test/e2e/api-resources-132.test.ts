// Acceptance (issue 10): `kubectl api-resources` lists every kind kube-apiserver 1.32 lists by
// default (test/fixtures/api-resources-1.32.txt), with the same short names, version, scope and
// kind; skiff may list more (k3s's Addon, metrics.k8s.io), never fewer. The objects kube-apiserver
// creates at start (system PriorityClasses, flow-control defaults, local APIServices) are there too.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok, tableRows, type KubectlVersion } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { encodeProtobuf } from '../../src/apiserver/protobuf/encode.js';

let server: TestServer;
before(async () => { server = await startServer(); });

interface Row { name: string; shortNames: string; apiVersion: string; namespaced: string; kind: string }
const key = (r: Row) => `${r.name} ${r.apiVersion}`;

function expected(): Row[] {
  return readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'api-resources-1.32.txt'), 'utf8').split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [name, shortNames, apiVersion, namespaced, kind] = l.split('\t');
      return { name, shortNames: shortNames === '-' ? '' : shortNames, apiVersion, namespaced, kind };
    });
}

async function listed(version: KubectlVersion): Promise<Map<string, Row>> {
  const out = ok(await server.kubectl(['api-resources', '--no-headers'], { version }));
  const rows = tableRows(out).map((c): Row => c.length === 5
    ? { name: c[0], shortNames: c[1], apiVersion: c[2], namespaced: c[3], kind: c[4] }
    : { name: c[0], shortNames: '', apiVersion: c[1], namespaced: c[2], kind: c[3] });
  return new Map(rows.map((r) => [key(r), r]));
}

for (const version of ['1.32', '1.27', '1.33'] as const) {
  test(`kubectl ${version} api-resources lists every resource kube-apiserver 1.32 lists`, async () => {
    const have = await listed(version);
    const missing: string[] = [];
    for (const want of expected()) {
      const got = have.get(key(want));
      if (!got) { missing.push(key(want)); continue; }
      assert.deepEqual(got, want, `row of ${key(want)}`);
    }
    assert.deepEqual(missing, [], `missing from kubectl api-resources (${version})`);
  });
}

test('api-versions names the groups add-on manifests need', async () => {
  const out = ok(await server.kubectl(['api-versions'])).trim().split('\n');
  for (const gv of ['admissionregistration.k8s.io/v1', 'apiregistration.k8s.io/v1', 'certificates.k8s.io/v1', 'node.k8s.io/v1',
    'flowcontrol.apiserver.k8s.io/v1', 'scheduling.k8s.io/v1', 'storage.k8s.io/v1']) {
    assert.ok(out.includes(gv), `${gv} missing from:\n${out.join('\n')}`);
  }
});

test('system PriorityClasses exist with Kubernetes values and give pods their priority', async () => {
  const rows = tableRows(ok(await server.kubectl(['get', 'priorityclasses'])));
  const byName = new Map(rows.slice(1).map((r) => [r[0], r]));
  assert.equal(byName.get('system-cluster-critical')?.[1], '2000000000');
  assert.equal(byName.get('system-node-critical')?.[1], '2000001000');
  // Priority admission resolves a pod's class to spec.priority; unknown classes and client-set values are refused.
  ok(await server.kubectl(['apply', '-f', '-'], { input: 'apiVersion: v1\nkind: Pod\nmetadata: {name: critical, namespace: kube-system}\nspec: {priorityClassName: system-cluster-critical, containers: [{name: c, image: busybox}]}\n' }));
  const pod = JSON.parse(ok(await server.kubectl(['get', 'pod', '-n', 'kube-system', 'critical', '-o', 'json'])));
  assert.deepEqual([pod.spec.priority, pod.spec.preemptionPolicy], [2000000000, 'PreemptLowerPriority']);
  const missing = await server.kubectl(['apply', '-f', '-'], { input: 'apiVersion: v1\nkind: Pod\nmetadata: {name: nope}\nspec: {priorityClassName: nope, containers: [{name: c, image: busybox}]}\n' });
  assert.match(missing.stderr, /pods "nope" is forbidden: no PriorityClass with name nope was found/);
  const forged = await server.kubectl(['apply', '-f', '-'], { input: 'apiVersion: v1\nkind: Pod\nmetadata: {name: forged}\nspec: {priority: 1000000, containers: [{name: c, image: busybox}]}\n' });
  assert.match(forged.stderr, /the integer value of priority \(1000000\) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name/);
  const del = await server.kubectl(['delete', 'priorityclass', 'system-node-critical']);
  assert.match(del.stderr, /priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority class and cannot be deleted/);
});

test('flow-control defaults are readable: exempt and catch-all, each schema pointing at an existing level', async () => {
  const levels = tableRows(ok(await server.kubectl(['get', 'prioritylevelconfigurations'])));
  assert.deepEqual(levels[0].slice(0, 3), ['NAME', 'TYPE', 'NOMINALCONCURRENCYSHARES']);
  const lv = new Map(levels.slice(1).map((r) => [r[0], r]));
  assert.equal(lv.get('exempt')?.[1], 'Exempt');
  assert.equal(lv.get('catch-all')?.[1], 'Limited');
  const schemas = tableRows(ok(await server.kubectl(['get', 'flowschemas'])));
  assert.deepEqual(schemas[0], ['NAME', 'PRIORITYLEVEL', 'MATCHINGPRECEDENCE', 'DISTINGUISHERMETHOD', 'AGE', 'MISSINGPL']);
  const fs = new Map(schemas.slice(1).map((r) => [r[0], r]));
  assert.deepEqual([fs.get('exempt')?.[1], fs.get('exempt')?.[2], fs.get('exempt')?.[5]], ['exempt', '1', 'False']);
  assert.deepEqual([fs.get('catch-all')?.[1], fs.get('catch-all')?.[2], fs.get('catch-all')?.[3]], ['catch-all', '10000', 'ByUser']);
});

test('local APIServices are listed as kube-apiserver lists them: Local and Available', async () => {
  const rows = tableRows(ok(await server.kubectl(['get', 'apiservices'])));
  assert.deepEqual(rows[0], ['NAME', 'SERVICE', 'AVAILABLE', 'AGE']);
  const byName = new Map(rows.slice(1).map((r) => [r[0], r]));
  for (const name of ['v1.', 'v1.apps', 'v2.autoscaling', 'v1.certificates.k8s.io', 'v1.admissionregistration.k8s.io', 'v1beta1.metrics.k8s.io']) {
    assert.deepEqual(byName.get(name)?.slice(1, 3), ['Local', 'True'], `${name} in:\n${rows.map((r) => r.join(' ')).join('\n')}`);
  }
  const core = JSON.parse(ok(await server.kubectl(['get', 'apiservice', 'v1.', '-o', 'json'])));
  assert.equal(core.metadata.labels['kube-aggregator.kubernetes.io/automanaged'], 'onstart');
  assert.equal(core.spec.groupPriorityMinimum, 18000);
  assert.equal(core.status.conditions[0].reason, 'Local');
});

test('componentstatuses answer as kube-apiserver 1.32 does', async () => {
  const rows = tableRows(ok(await server.kubectl(['get', 'componentstatuses'])));
  assert.deepEqual(rows[0], ['NAME', 'STATUS', 'MESSAGE', 'ERROR']);
  assert.deepEqual(rows.slice(1).map((r) => r[0]).sort(), ['controller-manager', 'etcd-0', 'scheduler']);
});

test('webhook configurations and admission policies are stored with defaults and validated', async () => {
  const manifest = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: deny-things}
webhooks:
- name: deny.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {service: {name: webhook, namespace: default}}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
`;
  ok(await server.kubectl(['apply', '-f', '-'], { input: manifest }));
  const vwc = JSON.parse(ok(await server.kubectl(['get', 'validatingwebhookconfiguration', 'deny-things', '-o', 'json'])));
  const w = vwc.webhooks[0];
  assert.deepEqual([w.failurePolicy, w.matchPolicy, w.timeoutSeconds, w.clientConfig.service.port, w.rules[0].scope],
    ['Fail', 'Equivalent', 10, 443, '*']);
  const rows = tableRows(ok(await server.kubectl(['get', 'validatingwebhookconfigurations'])));
  assert.deepEqual(rows[0], ['NAME', 'WEBHOOKS', 'AGE']);
  // Enforced: with failurePolicy Fail, a ConfigMap the absent webhook would see is refused, in
  // Kubernetes' words; once the configuration is gone, creates go through again.
  const refused = await server.kubectl(['create', 'configmap', 'refused']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /failed calling webhook "deny\.example\.com"/);
  ok(await server.kubectl(['delete', 'validatingwebhookconfiguration', 'deny-things']));
  ok(await server.kubectl(['create', 'configmap', 'allowed-again']));

  const bad = await server.kubectl(['apply', '-f', '-'], { input: manifest.replace('deny-things', 'bad').replace('deny.example.com', 'deny').replace('sideEffects: None', 'sideEffects: Some') });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /webhooks\[0\]\.name: Invalid value: "deny": should be a domain with at least three segments separated by dots/);
  assert.match(bad.stderr, /webhooks\[0\]\.sideEffects: Unsupported value: "Some"/);

  const vap = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: replicas}
spec:
  matchConstraints: {resourceRules: [{operations: [CREATE, UPDATE], apiGroups: [apps], apiVersions: [v1], resources: [deployments]}]}
  validations: [{expression: "object.spec.replicas <= 5"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: replicas}
spec: {policyName: replicas, validationActions: [Deny]}
`;
  ok(await server.kubectl(['apply', '-f', '-'], { input: vap }));
  const pol = JSON.parse(ok(await server.kubectl(['get', 'validatingadmissionpolicy', 'replicas', '-o', 'json'])));
  assert.equal(pol.spec.failurePolicy, 'Fail');
  const noActions = await server.kubectl(['apply', '-f', '-'], { input: 'apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: x}\nspec: {policyName: replicas, validationActions: [Deny, Warn]}\n' });
  assert.match(noActions.stderr, /spec\.validationActions: Invalid value: .*must not contain both Deny and Warn/);
  // The policy is enforced: it must not outlive this test on the shared server.
  ok(await server.kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', 'replicas']));
});

test('RuntimeClass: stored, printed, decoded from protobuf, handler validated', async () => {
  ok(await server.kubectl(['apply', '-f', '-'], { input: 'apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: runsc\n' }));
  const rows = tableRows(ok(await server.kubectl(['get', 'runtimeclasses'])));
  assert.deepEqual(rows.slice(0, 2).map((r) => r.slice(0, 2)), [['NAME', 'HANDLER'], ['gvisor', 'runsc']]);
  // kubectl's typed commands send protobuf bodies; the new kinds decode like the old ones.
  const body = encodeProtobuf({ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'kata' }, handler: 'kata', overhead: { podFixed: { cpu: '250m' } } });
  const pb = await server.request('POST', '/apis/node.k8s.io/v1/runtimeclasses', { body, contentType: 'application/vnd.kubernetes.protobuf' });
  assert.equal(pb.status, 201, pb.body);
  assert.deepEqual([pb.json().handler, pb.json().overhead], ['kata', { podFixed: { cpu: '250m' } }]);
  const bad = await server.kubectl(['apply', '-f', '-'], { input: 'apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: bad}\nhandler: Not_A_Label\n' });
  assert.match(bad.stderr, /handler: Invalid value: "Not_A_Label": a lowercase RFC 1123 label must consist of/);
});

test('POST to bindings binds the named pod (the collection form of pods/binding)', async () => {
  // Nothing schedules on this server's nodes: there are none, so the pod stays unbound until bound here.
  ok(await server.kubectl(['run', 'bind-me', '--image=busybox', '--restart=Never']));
  ok(await server.kubectl(['create', '-f', '-'], { input: 'apiVersion: v1\nkind: Binding\nmetadata: {name: bind-me}\ntarget: {apiVersion: v1, kind: Node, name: some-node}\n' }));
  const pod = JSON.parse(ok(await server.kubectl(['get', 'pod', 'bind-me', '-o', 'json'])));
  assert.equal(pod.spec.nodeName, 'some-node');
});

test('a CRD group gets an automanaged APIService, removed with the CRD', async () => {
  ok(await server.kubectl(['apply', '-f', '-'], { input: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.apisvc.example.com}
spec:
  group: apisvc.example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions: [{name: v1alpha1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
` }));
  const svc = await eventually(async () => {
    const r = await server.kubectl(['get', 'apiservice', 'v1alpha1.apisvc.example.com', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  }, 'APIService of the CRD group');
  assert.equal(svc.metadata.labels['kube-aggregator.kubernetes.io/automanaged'], 'true');
  ok(await server.kubectl(['delete', 'crd', 'gadgets.apisvc.example.com']));
  await eventually(async () => (await server.kubectl(['get', 'apiservice', 'v1alpha1.apisvc.example.com'])).code !== 0, 'APIService removed with its CRD');
});
