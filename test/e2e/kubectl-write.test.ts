// Acceptance (issue 2): changing objects with kubectl: create (YAML and the protobuf-bodied
// `create <kind>` generators), client- and server-side apply, label/annotate/taint, the three patch
// types, scale, edit, delete --wait, wait --for=delete, auth can-i, and validation errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, fixture, fixturePath, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ok, fails } from '../helpers/kubectl.js';

let server: TestServer;
before(async () => { server = await startServer({ args: API_ONLY }); });

let nsCount = 0;
/** Each test works in a namespace of its own, so tests sharing the server stay independent. */
async function namespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${++nsCount}`;
  ok(await server.kubectl(['create', 'namespace', ns]), `create namespace ${ns}`);
  return ns;
}

async function k(args: string[], input?: string): Promise<string> {
  return ok(await server.kubectl(args, { input }));
}

async function getJson(args: string[]): Promise<any> {
  return JSON.parse(await k(['get', ...args, '-o', 'json']));
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('create -f with a multi-document YAML file', async () => {
  const ns = await namespace('multi');
  const out = await k(['create', '-n', ns, '-f', fixturePath('multi-doc.yaml')]);
  assert.deepEqual(out.trim().split('\n'), ['configmap/app-config created', 'service/app created', 'deployment.apps/app created']);
  const names = await k(['get', 'configmaps,services,deployments', '-n', ns, '-l', 'app=shop', '-o', 'name']);
  assert.deepEqual(names.trim().split('\n').sort(), ['configmap/app-config', 'deployment.apps/app', 'service/app']);

  const again = await server.kubectl(['create', '-n', ns, '-f', fixturePath('multi-doc.yaml')]);
  fails(again, /Error from server \(AlreadyExists\): error when creating ".*multi-doc\.yaml": configmaps "app-config" already exists/);
});

test('apply -f twice: the second apply changes the image and keeps fields not in the manifest', async () => {
  const ns = await namespace('apply');
  const v1 = fixture('web-deployment.yaml');
  assert.equal((await k(['apply', '-n', ns, '-f', '-'], v1)).trim(), 'deployment.apps/web created');
  // Fields set by someone else, and defaults the server filled in, are not in the manifest.
  await k(['label', 'deployment', 'web', '-n', ns, 'owner=ops']);

  const v2 = v1.replace('nginx:1.25', 'nginx:1.26');
  assert.equal((await k(['apply', '-n', ns, '-f', '-'], v2)).trim(), 'deployment.apps/web configured');
  const d = await getJson(['deployment', 'web', '-n', ns]);
  const containers = d.spec.template.spec.containers;
  assert.deepEqual(containers.map((c: any) => [c.name, c.image]), [['web', 'nginx:1.26'], ['sidecar', 'busybox:1.36']]);
  assert.equal(d.metadata.labels.owner, 'ops');
  assert.equal(d.metadata.labels.app, 'web');
  assert.equal(d.spec.replicas, 2);
  assert.equal(d.spec.progressDeadlineSeconds, 600);
  assert.equal(d.spec.strategy.type, 'RollingUpdate');
  assert.equal(d.metadata.generation, 2, 'a spec change bumps generation');
  const lastApplied = JSON.parse(d.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
  assert.equal(lastApplied.spec.template.spec.containers[0].image, 'nginx:1.26');

  assert.equal((await k(['apply', '-n', ns, '-f', '-'], v2)).trim(), 'deployment.apps/web unchanged');

  // Removing a container from the manifest removes it from the object (three-way merge).
  const v3 = v2.replace(/\n {8}- name: sidecar[\s\S]*$/, '\n');
  assert.equal((await k(['apply', '-n', ns, '-f', '-'], v3)).trim(), 'deployment.apps/web configured');
  const d3 = await getJson(['deployment', 'web', '-n', ns]);
  assert.deepEqual(d3.spec.template.spec.containers.map((c: any) => c.name), ['web']);
  assert.equal(d3.metadata.labels.owner, 'ops');
});

test('apply --server-side: a second manager conflicts until --force-conflicts', async () => {
  const ns = await namespace('ssa');
  const cm = fixture('ssa-configmap.yaml');
  assert.equal((await k(['apply', '--server-side', '-n', ns, '-f', '-'], cm)).trim(), 'configmap/ssa serverside-applied');

  const other = cm.replace('key: first', 'key: second');
  const conflict = await server.kubectl(['apply', '--server-side', '--field-manager', 'other', '-n', ns, '-f', '-'], { input: other });
  fails(conflict, /Apply failed with 1 conflict: conflict with "kubectl"[^:]*: \.data\.key/);
  assert.equal(await k(['get', 'configmap', 'ssa', '-n', ns, '-o', 'jsonpath={.data.key}']), 'first');

  const forced = await k(['apply', '--server-side', '--field-manager', 'other', '--force-conflicts', '-n', ns, '-f', '-'], other);
  assert.equal(forced.trim(), 'configmap/ssa serverside-applied');
  const got = await getJson(['configmap', 'ssa', '-n', ns, '--show-managed-fields']);
  assert.equal(got.data.key, 'second');
  const managers = got.metadata.managedFields.map((m: any) => `${m.manager}/${m.operation}`);
  assert.ok(managers.includes('other/Apply'), `managedFields: ${managers}`);
  const owner = got.metadata.managedFields.find((m: any) => m.manager === 'other');
  assert.ok(owner.fieldsV1['f:data']['f:key'], 'the forced apply took ownership of .data.key');
});

// The `create <kind>` generators post protobuf bodies (kubectl-wire.md).
test('create namespace (protobuf)', async () => {
  assert.equal((await k(['create', 'namespace', 'proto-ns'])).trim(), 'namespace/proto-ns created');
  const ns = await getJson(['namespace', 'proto-ns']);
  assert.equal(ns.status.phase, 'Active');
  assert.equal(ns.metadata.labels['kubernetes.io/metadata.name'], 'proto-ns');
});

test('create configmap --from-literal (protobuf)', async () => {
  const ns = await namespace('cm');
  const out = await k(['create', 'configmap', 'cfg', '-n', ns, '--from-literal=greeting=hello', '--from-literal=target=world']);
  assert.equal(out.trim(), 'configmap/cfg created');
  assert.deepEqual((await getJson(['configmap', 'cfg', '-n', ns])).data, { greeting: 'hello', target: 'world' });
});

test('create secret generic --from-literal (protobuf)', async () => {
  const ns = await namespace('secret');
  assert.equal((await k(['create', 'secret', 'generic', 'creds', '-n', ns, '--from-literal=password=s3cr3t'])).trim(), 'secret/creds created');
  const s = await getJson(['secret', 'creds', '-n', ns]);
  assert.equal(s.type, 'Opaque');
  assert.deepEqual(s.data, { password: b64('s3cr3t') });
});

test('create secret docker-registry (protobuf)', async () => {
  const ns = await namespace('regcred');
  const out = await k(['create', 'secret', 'docker-registry', 'regcred', '-n', ns,
    '--docker-server', 'registry.example.com', '--docker-username', 'robot', '--docker-password', 'hunter2']);
  assert.equal(out.trim(), 'secret/regcred created');
  const s = await getJson(['secret', 'regcred', '-n', ns]);
  assert.equal(s.type, 'kubernetes.io/dockerconfigjson');
  const cfg = JSON.parse(Buffer.from(s.data['.dockerconfigjson'], 'base64').toString('utf8'));
  assert.deepEqual(cfg.auths['registry.example.com'], { username: 'robot', password: 'hunter2', auth: b64('robot:hunter2') });
});

test('create deployment --image --replicas (protobuf)', async () => {
  const ns = await namespace('deploy');
  assert.equal((await k(['create', 'deployment', 'api', '-n', ns, '--image', 'nginx:1.25', '--replicas', '2'])).trim(), 'deployment.apps/api created');
  const d = await getJson(['deployment', 'api', '-n', ns]);
  assert.equal(d.spec.replicas, 2);
  assert.deepEqual(d.spec.selector.matchLabels, { app: 'api' });
  assert.deepEqual(d.spec.template.metadata.labels, { app: 'api' });
  assert.deepEqual(d.spec.template.spec.containers.map((c: any) => [c.name, c.image]), [['nginx', 'nginx:1.25']]);
  assert.equal(d.spec.template.spec.containers[0].imagePullPolicy, 'IfNotPresent');
  assert.equal(d.spec.revisionHistoryLimit, 10);
});

test('create service clusterip --tcp (protobuf)', async () => {
  const ns = await namespace('svc');
  assert.equal((await k(['create', 'service', 'clusterip', 'cache', '-n', ns, '--tcp=80:8080'])).trim(), 'service/cache created');
  const s = await getJson(['service', 'cache', '-n', ns]);
  assert.equal(s.spec.type, 'ClusterIP');
  assert.match(s.spec.clusterIP, /^10\.43\.\d+\.\d+$/);
  assert.deepEqual(s.spec.clusterIPs, [s.spec.clusterIP]);
  assert.deepEqual(s.spec.selector, { app: 'cache' });
  assert.deepEqual(s.spec.ports, [{ name: '80-8080', port: 80, protocol: 'TCP', targetPort: 8080 }]);
});

test('create job --image (protobuf)', async () => {
  const ns = await namespace('job');
  assert.equal((await k(['create', 'job', 'once', '-n', ns, '--image', 'busybox:1.36', '--', 'echo', 'hi'])).trim(), 'job.batch/once created');
  const j = await getJson(['job', 'once', '-n', ns]);
  assert.equal(j.spec.template.spec.restartPolicy, 'Never');
  assert.deepEqual(j.spec.template.spec.containers[0].command, ['echo', 'hi']);
  assert.equal(j.spec.backoffLimit, 6);
  assert.equal(j.spec.completions, 1);
  assert.equal(j.spec.parallelism, 1);
  // The job strategy generates a selector on the job's own uid.
  assert.equal(j.spec.selector.matchLabels['batch.kubernetes.io/controller-uid'], j.metadata.uid);
});

test('label: add, refuse to overwrite, --overwrite, remove with key-', async () => {
  const ns = await namespace('label');
  await k(['create', '-n', ns, '-f', '-'], fixture('pod.yaml'));
  assert.equal((await k(['label', 'pod', 'p1', '-n', ns, 'tier=web'])).trim(), 'pod/p1 labeled');
  fails(await server.kubectl(['label', 'pod', 'p1', '-n', ns, 'tier=api']), /'tier' already has a value \(web\), and --overwrite is false/);
  assert.equal((await k(['label', 'pod', 'p1', '-n', ns, 'tier=api', '--overwrite'])).trim(), 'pod/p1 labeled');
  assert.equal(await k(['get', 'pod', 'p1', '-n', ns, '-o', 'jsonpath={.metadata.labels.tier}']), 'api');
  assert.equal((await k(['label', 'pod', 'p1', '-n', ns, 'tier-'])).trim(), 'pod/p1 unlabeled');
  assert.deepEqual((await getJson(['pod', 'p1', '-n', ns])).metadata.labels, { app: 'demo' });
});

test('annotate: add, refuse to overwrite, --overwrite, remove with key-', async () => {
  const ns = await namespace('annotate');
  await k(['create', '-n', ns, '-f', '-'], fixture('pod.yaml'));
  assert.equal((await k(['annotate', 'pod', 'p1', '-n', ns, 'note=first'])).trim(), 'pod/p1 annotated');
  fails(await server.kubectl(['annotate', 'pod', 'p1', '-n', ns, 'note=second']), /--overwrite is false but found the following declared annotation\(s\): 'note' already has a value \(first\)/);
  assert.equal((await k(['annotate', 'pod', 'p1', '-n', ns, 'note=second', '--overwrite'])).trim(), 'pod/p1 annotated');
  assert.equal(await k(['get', 'pod', 'p1', '-n', ns, '-o', 'jsonpath={.metadata.annotations.note}']), 'second');
  assert.equal((await k(['annotate', 'pod', 'p1', '-n', ns, 'note-'])).trim(), 'pod/p1 annotated');
  assert.equal((await getJson(['pod', 'p1', '-n', ns])).metadata.annotations?.note, undefined);
});

test('node from YAML: label node, taint node and remove the taint', async () => {
  assert.equal((await k(['create', '-f', '-'], fixture('node.yaml', { 'edge-1': 'edge-2' }))).trim(), 'node/edge-2 created');
  assert.equal((await k(['label', 'node', 'edge-2', 'disk=ssd'])).trim(), 'node/edge-2 labeled');
  assert.equal(await k(['get', 'nodes', '-l', 'disk=ssd', '-o', 'name']), 'node/edge-2\n');

  assert.equal((await k(['taint', 'node', 'edge-2', 'dedicated=gpu:NoSchedule'])).trim(), 'node/edge-2 tainted');
  let node = await getJson(['node', 'edge-2']);
  assert.deepEqual(node.spec.taints, [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }]);
  // Status set at create survives spec patches.
  assert.equal(node.status.nodeInfo.kubeletVersion, 'v1.32.4+skiff');
  fails(await server.kubectl(['taint', 'node', 'edge-2', 'dedicated=cpu:NoSchedule']), /already has dedicated taint\(s\) with same effect\(s\) and --overwrite is false/);

  assert.equal((await k(['taint', 'node', 'edge-2', 'dedicated=gpu:NoSchedule-'])).trim(), 'node/edge-2 untainted');
  node = await getJson(['node', 'edge-2']);
  assert.deepEqual(node.spec.taints ?? [], []);
  assert.equal(node.metadata.labels.disk, 'ssd');
});

test('patch --type=strategic (default) merges containers by name', async () => {
  const ns = await namespace('patch-smp');
  await k(['create', '-n', ns, '-f', '-'], fixture('web-deployment.yaml'));
  const out = await k(['patch', 'deployment', 'web', '-n', ns, '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}']);
  assert.equal(out.trim(), 'deployment.apps/web patched');
  const d = await getJson(['deployment', 'web', '-n', ns]);
  assert.deepEqual(d.spec.template.spec.containers.map((c: any) => [c.name, c.image]), [['web', 'nginx:1.27'], ['sidecar', 'busybox:1.36']]);
  assert.deepEqual(d.spec.template.spec.containers[0].ports, [{ containerPort: 80, protocol: 'TCP' }]);

  const same = await k(['patch', 'deployment', 'web', '-n', ns, '-p', '{"spec":{"replicas":2}}']);
  assert.equal(same.trim(), 'deployment.apps/web patched (no change)');
});

test('patch --type=merge replaces lists', async () => {
  const ns = await namespace('patch-merge');
  await k(['create', '-n', ns, '-f', '-'], fixture('web-deployment.yaml'));
  const out = await k(['patch', 'deployment', 'web', '-n', ns, '--type=merge', '-p',
    '{"metadata":{"labels":{"patched":"merge"}},"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}']);
  assert.equal(out.trim(), 'deployment.apps/web patched');
  const d = await getJson(['deployment', 'web', '-n', ns]);
  assert.deepEqual(d.spec.template.spec.containers.map((c: any) => [c.name, c.image]), [['web', 'nginx:1.28']]);
  assert.equal(d.metadata.labels.patched, 'merge');
  assert.equal(d.metadata.labels.app, 'web');
});

test('patch --type=json applies RFC 6902 operations', async () => {
  const ns = await namespace('patch-json');
  await k(['create', '-n', ns, '-f', '-'], fixture('web-deployment.yaml'));
  const out = await k(['patch', 'deployment', 'web', '-n', ns, '--type=json', '-p',
    '[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/labels/patched","value":"json"},{"op":"remove","path":"/spec/template/spec/containers/1"}]']);
  assert.equal(out.trim(), 'deployment.apps/web patched');
  const d = await getJson(['deployment', 'web', '-n', ns]);
  assert.equal(d.spec.replicas, 3);
  assert.equal(d.metadata.labels.patched, 'json');
  assert.deepEqual(d.spec.template.spec.containers.map((c: any) => c.name), ['web']);

  const failedTest = await server.kubectl(['patch', 'deployment', 'web', '-n', ns, '--type=json', '-p', '[{"op":"test","path":"/spec/replicas","value":99}]']);
  assert.notEqual(failedTest.code, 0, 'a failing "test" operation rejects the patch');
  assert.equal(await k(['get', 'deploy', 'web', '-n', ns, '-o', 'jsonpath={.spec.replicas}']), '3');
});

test('scale deployment --replicas=5', async () => {
  const ns = await namespace('scale');
  await k(['create', '-n', ns, '-f', '-'], fixture('web-deployment.yaml'));
  assert.equal((await k(['scale', 'deployment', 'web', '-n', ns, '--replicas=5'])).trim(), 'deployment.apps/web scaled');
  assert.equal(await k(['get', 'deploy', 'web', '-n', ns, '-o', 'jsonpath={.spec.replicas}']), '5');
  // The precondition form reads the scale subresource first.
  fails(await server.kubectl(['scale', 'deployment', 'web', '-n', ns, '--current-replicas=2', '--replicas=1']), /Expected replicas to be 2, was 5/);
});

test('edit through KUBE_EDITOR', async () => {
  const ns = await namespace('edit');
  await k(['create', '-n', ns, '-f', '-'], fixture('web-deployment.yaml'));
  const dir = mkdtempSync(join(tmpdir(), 'skiff-test-editor-'));
  try {
    const editor = join(dir, 'editor.sh');
    // kubectl writes the object to a temp file and runs the editor on it; spec.replicas sits at
    // two spaces of indentation in its YAML.
    writeFileSync(editor, '#!/bin/sh\nsed -i "s/^  replicas: 2$/  replicas: 4/" "$1"\n', { mode: 0o755 });
    const r = await server.kubectl(['edit', 'deployment', 'web', '-n', ns], { env: { KUBE_EDITOR: editor } });
    assert.equal(ok(r, 'kubectl edit').trim(), 'deployment.apps/web edited');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(await k(['get', 'deploy', 'web', '-n', ns, '-o', 'jsonpath={.spec.replicas}']), '4');
});

test('delete namespace --wait removes the namespace and its contents', async () => {
  const ns = await namespace('doomed');
  await k(['create', '-n', ns, '-f', fixturePath('multi-doc.yaml')]);
  await k(['create', 'secret', 'generic', 'inside', '-n', ns, '--from-literal=a=b']);
  const out = await k(['delete', 'namespace', ns, '--wait', '--timeout=30s'], undefined);
  assert.equal(out.trim(), `namespace "${ns}" deleted`);
  fails(await server.kubectl(['get', 'namespace', ns]), new RegExp(`Error from server \\(NotFound\\): namespaces "${ns}" not found`));
  // kubectl 1.32 follows a 404 with a GET of the namespace and reports the namespace as missing.
  fails(await server.kubectl(['get', 'configmap', 'app-config', '-n', ns]), new RegExp(`Error from server \\(NotFound\\): (configmaps "app-config"|namespaces "${ns}") not found`));
  const left = await server.kubectl(['get', 'configmaps,secrets,services,deployments', '-n', ns, '-o', 'name']);
  assert.equal(ok(left), '', 'no objects survive in a deleted namespace');
});

test('wait --for=delete returns when the pod is deleted in parallel', async () => {
  const ns = await namespace('wait');
  await k(['create', '-n', ns, '-f', '-'], fixture('pod.yaml'));
  const waiter = server.kubectlStream(['wait', '--for=delete', 'pod/p1', '-n', ns, '--timeout=30s']);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(waiter.proc.exitCode, null, `wait returned while the pod still exists:\n${waiter.stdout}${waiter.stderr}`);
    // No kubelet confirms termination, so a graceful delete of a bound pod would wait for ever.
    const del = await server.kubectl(['delete', 'pod', 'p1', '-n', ns, '--grace-period=0', '--force']);
    assert.equal(ok(del).trim(), 'pod "p1" force deleted');
    const r = await waiter.wait(30_000);
    assert.equal(r.code, 0, `wait failed:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stdout.trim(), 'pod/p1 condition met');
  } finally {
    await waiter.stop();
  }
});

test('auth can-i and whoami', async () => {
  const yes = await server.kubectl(['auth', 'can-i', 'create', 'pods']);
  assert.equal(ok(yes).trim(), 'yes');
  const no = await server.kubectl(['auth', 'can-i', '--as', 'system:serviceaccount:default:default', 'create', 'pods']);
  assert.equal(no.code, 1, `can-i answers "no" with exit 1: ${no.stderr}`);
  assert.equal(no.stdout.trim(), 'no');

  const who = JSON.parse(await k(['auth', 'whoami', '-o', 'json']));
  assert.equal(who.kind, 'SelfSubjectReview');
  assert.equal(who.status.userInfo.username, 'system:admin');
  assert.ok(who.status.userInfo.groups.includes('system:masters'), JSON.stringify(who.status.userInfo));
  assert.ok(who.status.userInfo.groups.includes('system:authenticated'), JSON.stringify(who.status.userInfo));
});

test('invalid input is rejected with Kubernetes validation errors', async () => {
  const bad = await server.kubectl(['create', 'deployment', 'Bad_Name', '--image=x']);
  fails(bad, /Deployment\.apps "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);

  const ns = await namespace('invalid');
  await k(['create', '-n', ns, '-f', '-'], fixture('web-deployment.yaml'));
  const negative = await server.kubectl(['patch', 'deployment', 'web', '-n', ns, '--type=merge', '-p', '{"spec":{"replicas":-1}}']);
  // kubectl rewrites an Invalid Status as "The <details.kind> <name> is invalid: <causes>".
  fails(negative, /The Deployment "web" is invalid: spec\.replicas: Invalid value: -1: must be greater than or equal to 0/);

  // Strict field validation: kubectl sends fieldValidation=Strict and the server names the field.
  const unknown = fixture('pod.yaml').replace('  nodeName: edge-1', '  nodeName: edge-1\n  bogusField: 1');
  fails(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: unknown }), /unknown field "spec\.bogusField"/);

  fails(await server.kubectl(['create', 'configmap', 'x', '-n', 'no-such-namespace', '--from-literal=a=b']),
    /namespaces "no-such-namespace" not found/);
});
