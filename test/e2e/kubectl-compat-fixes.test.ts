// Issue 10's "Why" list, each with the exact kubectl command a user types: `kubectl autoscale`
// without --min (kubectl <= 1.32 posts autoscaling/v1 without minReplicas), autoscaling/v1 manifests
// without minReplicas, `kubectl delete namespace --all` sparing the system namespaces, a PUT with
// resourceVersion "0" (unconditional, as kube-apiserver treats it), `kubectl auth whoami` with
// kubectl 1.27 (authentication.k8s.io/v1beta1).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok, fails, type KubectlVersion } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
before(async () => {
  server = await startServer();
  ok(await server.kubectl(['create', 'deployment', 'web', '--image=busybox']));
});

for (const version of ['1.27', '1.30', '1.32', '1.33'] as KubectlVersion[]) {
  test(`kubectl ${version} autoscale deploy web --max=5 (no --min) gets minReplicas 1`, async () => {
    const name = `web-${version.replace('.', '')}`;
    assert.match(ok(await server.kubectl(['autoscale', 'deploy', 'web', '--max=5', `--name=${name}`], { version })),
      new RegExp(`horizontalpodautoscaler.autoscaling/${name} autoscaled`));
    const hpa = JSON.parse(ok(await server.kubectl(['get', 'horizontalpodautoscalers.v2.autoscaling', name, '-o', 'json'])));
    assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [1, 5]);
  });
}

test('an autoscaling/v1 manifest without minReplicas applies, defaulted to 1 in both versions', async () => {
  ok(await server.kubectl(['apply', '-f', '-'], { input: `apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: v1-no-min}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
  targetCPUUtilizationPercentage: 60
` }));
  const v1 = JSON.parse(ok(await server.kubectl(['get', '--raw', '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/v1-no-min'])));
  assert.deepEqual([v1.apiVersion, v1.spec.minReplicas, v1.spec.maxReplicas, v1.spec.targetCPUUtilizationPercentage], ['autoscaling/v1', 1, 3, 60]);
  const v2 = JSON.parse(ok(await server.kubectl(['get', 'horizontalpodautoscalers.v2.autoscaling', 'v1-no-min', '-o', 'json'])));
  assert.equal(v2.spec.minReplicas, 1);
  // Re-applying the same manifest is not a conflict and keeps the default.
  ok(await server.kubectl(['apply', '-f', '-'], { input: `apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: v1-no-min}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 4
` }));
  const again = JSON.parse(ok(await server.kubectl(['get', 'horizontalpodautoscalers.v2.autoscaling', 'v1-no-min', '-o', 'json'])));
  assert.deepEqual([again.spec.minReplicas, again.spec.maxReplicas], [1, 4]);
});

test('kubectl delete namespace --all leaves default, kube-system, kube-public and kube-node-lease', async () => {
  ok(await server.kubectl(['create', 'namespace', `scratch-${process.pid}`]));
  const r = await server.kubectl(['delete', 'namespace', '--all', '--wait=false']);
  assert.notEqual(r.code, 0, 'kubectl reports the refused deletions');
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    assert.match(r.stderr, new RegExp(`namespaces "${ns}" is forbidden: this namespace may not be deleted`));
  }
  assert.match(r.stdout, new RegExp(`namespace "scratch-${process.pid}" deleted`));
  const left = ok(await server.kubectl(['get', 'namespaces', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\\n"}{end}']));
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) assert.match(left, new RegExp(`^${ns} Active$`, 'm'));
  await eventually(async () => !(await server.kubectl(['get', 'namespace', `scratch-${process.pid}`])).stdout.includes('scratch'), 'scratch namespace gone');
  // The cluster still works in default.
  ok(await server.kubectl(['create', 'configmap', 'after-delete-all']));
});

test('PUT with resourceVersion "0" is an unconditional update, as in kube-apiserver; a stale one is a conflict', async () => {
  ok(await server.kubectl(['create', 'configmap', 'rv0', '--from-literal=a=1']));
  const cm = JSON.parse(ok(await server.kubectl(['get', 'configmap', 'rv0', '-o', 'json'])));
  const before = cm.metadata.resourceVersion;
  ok(await server.kubectl(['patch', 'configmap', 'rv0', '-p', '{"data":{"a":"2"}}']));   // our copy is now stale
  cm.metadata.resourceVersion = '0';
  cm.data = { a: '3' };
  ok(await server.kubectl(['replace', '-f', '-'], { input: JSON.stringify(cm) }));
  const now = JSON.parse(ok(await server.kubectl(['get', 'configmap', 'rv0', '-o', 'json'])));
  assert.equal(now.data.a, '3');
  assert.notEqual(now.metadata.resourceVersion, before);
  cm.metadata.resourceVersion = before;
  cm.data = { a: '4' };
  fails(await server.kubectl(['replace', '-f', '-'], { input: JSON.stringify(cm) }),
    /Operation cannot be fulfilled on configmaps "rv0": the object has been modified; please apply your changes to the latest version and try again/);
});

test('kubectl 1.27 auth whoami (authentication.k8s.io/v1beta1 SelfSubjectReview)', async () => {
  const out = ok(await server.kubectl(['auth', 'whoami'], { version: '1.27' }));
  assert.match(out, /Username\s+system:admin/);
  assert.match(out, /Groups\s+\[system:masters system:authenticated\]/);
  const json = JSON.parse(ok(await server.kubectl(['auth', 'whoami', '-o', 'json'], { version: '1.27' })));
  assert.equal(json.apiVersion, 'authentication.k8s.io/v1beta1');
  assert.equal(json.status.userInfo.username, 'system:admin');
});
