// Issue 10's "Why" list, one `describe` per item, each with the exact kubectl command a user types
// (with the oldest and newest kubectl installed where the versions differ). `kubectl debug` with a real
// agent (attach, --target) is in kubectl-debug.test.ts; here it is the API a plain `kubectl debug` needs.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok, fails, type KubectlVersion } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
before(async () => {
  server = await startServer();
  ok(await server.kubectl(['create', 'deployment', 'web', '--image=busybox']));
});

const VERSIONS: KubectlVersion[] = ['1.27', '1.32', '1.33'];

function manifest(name: string, data: Record<string, string>): string {
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: ${name}
  labels: {app: why}
data:
${Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`).join('\n')}
`;
}

function deployment(name: string, image: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
      - name: c
        image: ${image}
`;
}

async function getJson(kind: string, name: string): Promise<any> {
  return JSON.parse(ok(await server.kubectl(['get', kind, name, '-o', 'json', '--show-managed-fields'])));
}

describe('kubectl api-versions lists admissionregistration.k8s.io, apiregistration.k8s.io, certificates.k8s.io and node.k8s.io', () => {
  for (const version of VERSIONS) {
    it(`kubectl ${version} api-versions, then apply of a ValidatingWebhookConfiguration (no "no matches for kind")`, async () => {
      const groups = ok(await server.kubectl(['api-versions'], { version })).trim().split('\n');
      for (const gv of ['admissionregistration.k8s.io/v1', 'apiregistration.k8s.io/v1', 'certificates.k8s.io/v1', 'node.k8s.io/v1']) {
        assert.ok(groups.includes(gv), `${gv} in ${groups.join(' ')}`);
      }
      const name = `why-${version.replace('.', '')}`;
      assert.match(ok(await server.kubectl(['apply', '-f', '-'], { version, input: `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ${name}}
webhooks:
- name: deny.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  clientConfig: {url: "https://127.0.0.1:1/validate"}
  rules: [{operations: [CREATE], apiGroups: [example.com], apiVersions: [v1], resources: [widgets]}]
` })), new RegExp(`validatingwebhookconfiguration.admissionregistration.k8s.io/${name} created`));
    });
  }
});

describe('kubectl diff --server-side on an unchanged object shows no change', () => {
  for (const version of VERSIONS) {
    it(`kubectl ${version} diff --server-side -f <applied manifest> exits 0 with nothing printed`, async () => {
      const name = `diff-${version.replace('.', '')}`;
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest(name, { a: '1' }), version }));
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: deployment(name, 'busybox:1'), version }));
      for (const m of [manifest(name, { a: '1' }), deployment(name, 'busybox:1')]) {
        const r = await server.kubectl(['diff', '--server-side', '-f', '-'], { input: m, version });
        assert.equal(r.code, 0, `kubectl diff found a difference:\n${r.stdout}\n${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.doesNotMatch(r.stderr, /keeps changing/);
      }
      // A real change is shown (exit 1) and only that change.
      const r = await server.kubectl(['diff', '--server-side', '-f', '-'], { input: manifest(name, { a: '2' }), version });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /^-\s+a: "1"$/m);
      assert.match(r.stdout, /^\+\s+a: "2"$/m);
      assert.doesNotMatch(r.stdout, /resourceVersion|generation/);
    });
  }

  it('a dry-run answer carries the resourceVersion the object has (update, patch, apply) and none on create', async () => {
    ok(await server.kubectl(['create', 'configmap', 'dry', '--from-literal=a=1']));
    const live = await getJson('configmap', 'dry');
    const rv = live.metadata.resourceVersion;
    const apply = JSON.parse(ok(await server.kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-o', 'json', '-f', '-'], { input: manifest('dry', { a: '9' }) })));
    assert.equal(apply.metadata.resourceVersion, rv);
    assert.equal(apply.data.a, '9');
    const patched = JSON.parse(ok(await server.kubectl(['patch', 'configmap', 'dry', '--dry-run=server', '-o', 'json', '-p', '{"data":{"a":"8"}}'])));
    assert.equal(patched.metadata.resourceVersion, rv);
    assert.equal(patched.data.a, '8');
    const replaced = JSON.parse(ok(await server.kubectl(['replace', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify({ ...live, data: { a: '7' } }) })));
    assert.equal(replaced.metadata.resourceVersion, rv);
    const created = JSON.parse(ok(await server.kubectl(['create', 'configmap', 'dry-new', '--dry-run=server', '-o', 'json', '--from-literal=a=1'])));
    assert.equal(created.metadata.resourceVersion, undefined);
    assert.ok(created.metadata.uid && created.metadata.creationTimestamp, 'a dry-run create is what would be stored');
    assert.equal((await getJson('configmap', 'dry')).metadata.resourceVersion, rv, 'nothing was written');
    assert.notEqual((await server.kubectl(['get', 'configmap', 'dry-new'])).code, 0);
  });
});

describe('kubectl apply --server-side on an object created with client-side kubectl apply', () => {
  for (const version of VERSIONS) {
    it(`kubectl ${version}: apply, then apply --server-side with a change, migrates kubectl-client-side-apply's fields to kubectl`, async () => {
      const name = `csa-${version.replace('.', '')}`;
      ok(await server.kubectl(['apply', '-f', '-'], { input: manifest(name, { a: '1', b: '2' }), version }));
      ok(await server.kubectl(['apply', '-f', '-'], { input: deployment(name, 'busybox:1'), version }));
      const before = await getJson('configmap', name);
      assert.ok(before.metadata.managedFields.some((m: any) => m.manager === 'kubectl-client-side-apply'));
      // The changed values would conflict with kubectl-client-side-apply if nothing were migrated.
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest(name, { a: '10', b: '2' }), version }));
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: deployment(name, 'busybox:2'), version }));
      for (const kind of ['configmap', 'deployment']) {
        const after = await getJson(kind, name);
        const managers = after.metadata.managedFields.map((m: any) => `${m.manager}/${m.operation}`);
        assert.ok(!managers.includes('kubectl-client-side-apply/Update'), `client-side apply's fields migrated: ${managers}`);
        assert.ok(managers.includes('kubectl/Apply'), managers.join(' '));
      }
      assert.equal((await getJson('configmap', name)).data.a, '10');
      assert.equal((await getJson('deployment', name)).spec.template.spec.containers[0].image, 'busybox:2');
      // Removing a field from the manifest now removes it from the object: kubectl owns it.
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest(name, { a: '10' }), version }));
      const cm = await getJson('configmap', name);
      assert.deepEqual(cm.data, { a: '10' });
      // The last-applied annotation follows what was applied server-side, so a later client-side
      // apply diffs against it (and does not bring back or fight over `b`).
      assert.deepEqual(JSON.parse(cm.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).data, { a: '10' });
      ok(await server.kubectl(['apply', '-f', '-'], { input: manifest(name, { a: '11' }), version }));
      assert.deepEqual((await getJson('configmap', name)).data, { a: '11' });
    });
  }
});

describe('re-applying an unchanged manifest with --server-side writes nothing', () => {
  for (const version of VERSIONS) {
    it(`kubectl ${version} apply --server-side twice: same resourceVersion, no MODIFIED event`, async () => {
      const name = `noop-${version.replace('.', '')}`;
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest(name, { a: '1' }), version }));
      ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: deployment(name, 'busybox:1'), version }));
      const cmRv = (await getJson('configmap', name)).metadata.resourceVersion;
      const watch = server.kubectlStream(['get', 'configmap', name, '--watch-only', '--output-watch-events', '-o', 'json']);
      const events = () => [...watch.stdout.matchAll(/"type":\s*"(ADDED|MODIFIED|DELETED)"/g)].map((m) => m[1]);
      try {
        await new Promise((r) => setTimeout(r, 1000));
        for (let i = 0; i < 2; i++) {
          const out = ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest(name, { a: '1' }), version }));
          assert.match(out, new RegExp(`configmap/${name} serverside-applied`));
        }
        // The deployment controller writes its status; compare the spec generation and a fresh no-op.
        const depRv = (await getJson('deployment', name)).metadata.resourceVersion;
        ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: deployment(name, 'busybox:1'), version }));
        const dep = await getJson('deployment', name);
        assert.equal(dep.metadata.generation, 1);
        if (dep.metadata.resourceVersion !== depRv) {
          // Only the controller may have written in between (status), never the apply itself.
          assert.ok(!dep.metadata.managedFields.some((m: any) => m.manager === 'kubectl' && m.time > new Date(Date.now() - 500).toISOString()));
        }
        assert.equal((await getJson('configmap', name)).metadata.resourceVersion, cmRv);
        // A real change is seen by the watcher, and it is the first event it got.
        ok(await server.kubectl(['apply', '--server-side', '-f', '-'], { input: manifest(name, { a: '2' }), version }));
        await eventually(async () => events().includes('MODIFIED'), `watch sees the real change (so far: ${watch.stdout} ${watch.stderr})`);
        assert.deepEqual(events(), ['MODIFIED'], `only the real change was an event:\n${watch.stdout}`);
      } finally {
        await watch.stop();
      }
    });
  }

  it('a client-side kubectl apply of an unchanged manifest and a no-op PUT keep the resourceVersion too', async () => {
    ok(await server.kubectl(['apply', '-f', '-'], { input: manifest('noop-csa', { a: '1' }) }));
    const rv = (await getJson('configmap', 'noop-csa')).metadata.resourceVersion;
    assert.match(ok(await server.kubectl(['apply', '-f', '-'], { input: manifest('noop-csa', { a: '1' }) })), /configmap\/noop-csa unchanged/);
    // kubectl diff (client-side apply through a server dry-run) agrees, and a same-value patch is no change.
    const diff = await server.kubectl(['diff', '-f', '-'], { input: manifest('noop-csa', { a: '1' }) });
    assert.equal(diff.code, 0, diff.stdout + diff.stderr);
    assert.match(ok(await server.kubectl(['patch', 'configmap', 'noop-csa', '-p', '{"data":{"a":"1"}}'])), /configmap\/noop-csa patched \(no change\)/);
    // (not `kubectl replace`: it rewrites the last-applied annotation, a real change)
    const put = await server.request('PUT', '/api/v1/namespaces/default/configmaps/noop-csa', { body: await getJson('configmap', 'noop-csa') });
    assert.equal(put.status, 200, put.body);
    assert.equal(put.json().metadata.resourceVersion, rv);
    assert.equal((await getJson('configmap', 'noop-csa')).metadata.resourceVersion, rv);
  });
});

describe('kubectl autoscale deploy x --max=5 (kubectl <= 1.32) and autoscaling/v1 manifests without minReplicas', () => {
  for (const version of ['1.27', '1.30', '1.32', '1.33'] as KubectlVersion[]) {
    it(`kubectl ${version} autoscale deploy web --max=5 (no --min) gets minReplicas 1`, async () => {
      const name = `web-${version.replace('.', '')}`;
      assert.match(ok(await server.kubectl(['autoscale', 'deploy', 'web', '--max=5', `--name=${name}`], { version })),
        new RegExp(`horizontalpodautoscaler.autoscaling/${name} autoscaled`));
      const hpa = JSON.parse(ok(await server.kubectl(['get', 'horizontalpodautoscalers.v2.autoscaling', name, '-o', 'json'])));
      assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [1, 5]);
    });
  }

  it('an autoscaling/v1 manifest without minReplicas applies, defaulted to 1 in both versions', async () => {
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
});

describe('kubectl delete namespace --all spares the system namespaces', () => {
  it('kubectl delete namespace --all leaves default, kube-system, kube-public and kube-node-lease', async () => {
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
});

describe('a PUT with resourceVersion "0" is accepted as in Kubernetes', () => {
  it('PUT with resourceVersion "0" is an unconditional update, as in kube-apiserver; a stale one is a conflict', async () => {
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
});

describe('kubectl auth whoami with kubectl 1.27 (authentication.k8s.io/v1beta1 SelfSubjectReview)', () => {
  it('kubectl 1.27 auth whoami (authentication.k8s.io/v1beta1 SelfSubjectReview)', async () => {
    const out = ok(await server.kubectl(['auth', 'whoami'], { version: '1.27' }));
    assert.match(out, /Username\s+system:admin/);
    assert.match(out, /Groups\s+\[system:masters system:authenticated\]/);
    const json = JSON.parse(ok(await server.kubectl(['auth', 'whoami', '-o', 'json'], { version: '1.27' })));
    assert.equal(json.apiVersion, 'authentication.k8s.io/v1beta1');
    assert.equal(json.status.userInfo.username, 'system:admin');
  });
});

describe('kubectl debug pod --image=busybox adds an ephemeral container', () => {
  for (const version of VERSIONS) {
    it(`kubectl ${version} debug <pod> --image=busybox (no "ephemeralcontainers is not available yet")`, async () => {
      const name = `debug-${version.replace('.', '')}`;
      ok(await server.kubectl(['run', name, '--image=busybox', '--restart=Never', '--', 'sleep', '3600'], { version }));
      const r = await server.kubectl(['debug', name, '--image=busybox', '--', 'true'], { version });
      ok(r, 'kubectl debug');
      assert.doesNotMatch(r.stderr, /not available/);
      const pod = await getJson('pod', name);
      assert.equal(pod.spec.ephemeralContainers.length, 1);
      assert.equal(pod.spec.ephemeralContainers[0].image, 'busybox');
      assert.match(pod.spec.ephemeralContainers[0].name, /^debugger-/);
      // The subresource GET is the pod, as kubectl reads it.
      const sub = JSON.parse(ok(await server.kubectl(['get', '--raw', `/api/v1/namespaces/default/pods/${name}/ephemeralcontainers`])));
      assert.equal(sub.kind, 'Pod');
      assert.equal(sub.spec.ephemeralContainers.length, 1);
    });
  }
});

