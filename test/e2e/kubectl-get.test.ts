// Acceptance (issue 2): reading objects with kubectl: server-side tables and their exact columns,
// output formats, selectors, watching and describe.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { startServer, fixture, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ok, tableHeader, tableRows } from '../helpers/kubectl.js';

const NS = 'get-tests';
let server: TestServer;

before(async () => {
  server = await startServer({ args: API_ONLY });
  const k = (args: string[], input?: string) => server.kubectl(args, { input }).then((r) => ok(r));
  await k(['create', '-f', '-'], fixture('node.yaml'));
  await k(['create', 'namespace', NS]);
  await k(['create', '-n', NS, '-f', '-'], fixture('pod.yaml'));
  await k(['create', '-n', NS, '-f', '-'], fixture('pod.yaml', { 'name: p1': 'name: p2', 'app: demo': 'app: other' }));
  await k(['create', '-n', NS, '-f', '-'], fixture('web-deployment.yaml'));
  await k(['create', 'service', 'clusterip', 'api', '-n', NS, '--tcp=80:8080']);
});

const AGE = /^(\d+s|\d+m\d*s?)$/;

function row(out: string, name: string): string[] {
  const r = tableRows(out).find((cells) => cells[0] === name);
  assert.ok(r, `no row for ${name} in:\n${out}`);
  return r;
}

test('get pods prints the pod table', async () => {
  const out = ok(await server.kubectl(['get', 'pods', '-n', NS]));
  assert.deepEqual(tableHeader(out), ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
  const p1 = row(out, 'p1');
  // The pod strategy sets phase Pending on create; nothing runs it yet.
  assert.deepEqual(p1.slice(0, 4), ['p1', '0/1', 'Pending', '0']);
  assert.match(p1[4], AGE);
  assert.equal(tableRows(out).length, 3);
});

test('get pods -o wide adds the priority columns', async () => {
  const out = ok(await server.kubectl(['get', 'pods', '-n', NS, '-o', 'wide']));
  assert.deepEqual(tableHeader(out),
    ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);
  const p1 = row(out, 'p1');
  assert.deepEqual([p1[5], p1[6], p1[7], p1[8]], ['<none>', 'edge-1', '<none>', '<none>']);
});

test('get deployments prints the deployment table', async () => {
  const out = ok(await server.kubectl(['get', 'deployments', '-n', NS]));
  assert.deepEqual(tableHeader(out), ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE']);
  // No controllers yet (issue 3): nothing is up to date or available.
  assert.deepEqual(row(out, 'web').slice(0, 4), ['web', '0/2', '0', '0']);

  const wide = ok(await server.kubectl(['get', 'deploy', 'web', '-n', NS, '-o', 'wide']));
  assert.deepEqual(tableHeader(wide), ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR']);
  assert.deepEqual(row(wide, 'web').slice(5), ['web,sidecar', 'nginx:1.25,busybox:1.36', 'app=web']);
});

test('get services prints the service table with an allocated cluster IP', async () => {
  const out = ok(await server.kubectl(['get', 'services', '-n', NS]));
  assert.deepEqual(tableHeader(out), ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE']);
  const api = row(out, 'api');
  assert.equal(api[1], 'ClusterIP');
  assert.match(api[2], /^10\.43\.\d+\.\d+$/, 'cluster IP from the default service CIDR 10.43.0.0/16');
  assert.deepEqual(api.slice(3, 5), ['<none>', '80/TCP']);

  const wide = ok(await server.kubectl(['get', 'svc', 'api', '-n', NS, '-o', 'wide']));
  assert.deepEqual(tableHeader(wide), ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE', 'SELECTOR']);
  assert.equal(row(wide, 'api')[6], 'app=api');
});

test('get nodes prints the node table', async () => {
  const out = ok(await server.kubectl(['get', 'nodes']));
  assert.deepEqual(tableHeader(out), ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']);
  const n = row(out, 'edge-1');
  assert.deepEqual([n[1], n[2], n[4]], ['Ready', 'control-plane', 'v1.32.4+skiff']);

  const wide = ok(await server.kubectl(['get', 'node', 'edge-1', '-o', 'wide']));
  assert.deepEqual(tableHeader(wide), ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', 'INTERNAL-IP', 'EXTERNAL-IP',
    'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME']);
  assert.deepEqual(row(wide, 'edge-1').slice(5),
    ['192.0.2.10', '<none>', 'Debian GNU/Linux 12 (bookworm)', '6.18.0', 'containerd://1.6.20']);
});

test('get -o yaml and -o json return full objects', async () => {
  const pod = parseYaml(ok(await server.kubectl(['get', 'pod', 'p1', '-n', NS, '-o', 'yaml'])));
  assert.equal(pod.apiVersion, 'v1');
  assert.equal(pod.kind, 'Pod');
  assert.equal(pod.metadata.name, 'p1');
  assert.equal(pod.metadata.namespace, NS);
  assert.match(pod.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(pod.metadata.resourceVersion, /^\d+$/);
  assert.match(pod.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(pod.spec.nodeName, 'edge-1');
  assert.equal(pod.spec.containers[0].image, 'busybox:1.36');
  // Defaults the API server fills in.
  assert.equal(pod.spec.restartPolicy, 'Always');
  assert.equal(pod.spec.containers[0].terminationMessagePolicy, 'File');
  assert.equal(pod.status.phase, 'Pending');

  const list = JSON.parse(ok(await server.kubectl(['get', 'pods', '-n', NS, '-o', 'json'])));
  assert.equal(list.kind, 'List');
  assert.deepEqual(list.items.map((i: any) => i.metadata.name).sort(), ['p1', 'p2']);
  assert.ok(list.items.every((i: any) => i.kind === 'Pod' && i.apiVersion === 'v1'));
});

test('get -o jsonpath and -o name', async () => {
  const names = ok(await server.kubectl(['get', 'pods', '-n', NS, '-o', 'jsonpath={.items[*].metadata.name}']));
  assert.deepEqual(names.split(' ').sort(), ['p1', 'p2']);
  const byName = ok(await server.kubectl(['get', 'pods,deployments,services', '-n', NS, '-o', 'name']));
  assert.deepEqual(byName.trim().split('\n').sort(), ['deployment.apps/web', 'pod/p1', 'pod/p2', 'service/api']);
});

test('get -A adds the NAMESPACE column', async () => {
  const out = ok(await server.kubectl(['get', 'pods', '-A']));
  assert.deepEqual(tableHeader(out), ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
  const mine = tableRows(out).filter((r) => r[0] === NS).map((r) => r[1]).sort();
  assert.deepEqual(mine, ['p1', 'p2']);
});

test('get -l and --field-selector filter on the server', async () => {
  const byLabel = ok(await server.kubectl(['get', 'pods', '-n', NS, '-l', 'app=demo', '-o', 'name']));
  assert.equal(byLabel.trim(), 'pod/p1');
  const notIn = ok(await server.kubectl(['get', 'pods', '-n', NS, '-l', 'app notin (demo)', '-o', 'name']));
  assert.equal(notIn.trim(), 'pod/p2');
  const byField = ok(await server.kubectl(['get', 'pods', '-n', NS, '--field-selector', 'metadata.name=p2', '-o', 'name']));
  assert.equal(byField.trim(), 'pod/p2');
  const none = await server.kubectl(['get', 'pods', '-n', NS, '-l', 'app=nothing']);
  ok(none);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, new RegExp(`No resources found in ${NS} namespace\\.`));
});

test('get -w prints a line per added and modified object', async () => {
  const ns = 'watch-tests';
  ok(await server.kubectl(['create', 'namespace', ns]));
  ok(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: fixture('pod.yaml', { 'name: p1': 'name: w1' }) }));
  const watch = server.kubectlStream(['get', 'pods', '-n', ns, '-w']);
  try {
    await watch.waitFor(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/m);
    await watch.waitFor(/^w1\s+0\/1\s+Pending\s+0\s/m);
    ok(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: fixture('pod.yaml', { 'name: p1': 'name: w2' }) }));
    await watch.waitFor(/^w2\s+0\/1\s+Pending\s+0\s/m);
    ok(await server.kubectl(['label', 'pod', 'w2', '-n', ns, 'seen=yes']));
    // A second line for w2: the MODIFIED event.
    await watch.waitFor(/^w2\s.*\n(?:.*\n)*w2\s/m);
    // The header is printed once, not once per event.
    assert.equal(watch.stdout.match(/^NAME\s/gm)?.length, 1, watch.stdout);
  } finally {
    await watch.stop();
  }
});

test('describe deployment', async () => {
  const out = ok(await server.kubectl(['describe', 'deployment', 'web', '-n', NS]));
  assert.match(out, /^Name:\s+web$/m);
  assert.match(out, new RegExp(`^Namespace:\\s+${NS}$`, 'm'));
  assert.match(out, /^Selector:\s+app=web$/m);
  assert.match(out, /^Replicas:\s+2 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable$/m);
  assert.match(out, /^StrategyType:\s+RollingUpdate$/m);
  assert.match(out, /^Pod Template:$/m);
  assert.match(out, /^\s+Image:\s+nginx:1\.25$/m);
  assert.match(out, /^\s+Image:\s+busybox:1\.36$/m);
});

test('describe pod', async () => {
  const out = ok(await server.kubectl(['describe', 'pod', 'p1', '-n', NS]));
  assert.match(out, /^Name:\s+p1$/m);
  assert.match(out, new RegExp(`^Namespace:\\s+${NS}$`, 'm'));
  assert.match(out, /^Node:\s+edge-1\/?$/m);
  assert.match(out, /^Labels:\s+app=demo$/m);
  assert.match(out, /^Status:\s+Pending$/m);
  assert.match(out, /^Containers:\n\s+main:$/m);
  assert.match(out, /^\s+Image:\s+busybox:1\.36$/m);
});

test('describe node', async () => {
  const out = ok(await server.kubectl(['describe', 'node', 'edge-1']));
  assert.match(out, /^Name:\s+edge-1$/m);
  assert.match(out, /^Roles:\s+control-plane$/m);
  assert.match(out, /^Taints:\s+<none>$/m);
  assert.match(out, /^Unschedulable:\s+false$/m);
  assert.match(out, /^\s+Kubelet Version:\s+v1\.32\.4\+skiff$/m);
  assert.match(out, /^\s+InternalIP:\s+192\.0\.2\.10$/m);
  // The pods bound to the node, found with a spec.nodeName field selector across namespaces.
  assert.match(out, /^Non-terminated Pods:\s+\(\d+ in total\)$/m);
  assert.match(out, new RegExp(`^\\s+${NS}\\s+p1\\s`, 'm'));
});
