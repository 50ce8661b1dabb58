// Acceptance (issue 2): version skew. kubectl supports servers one minor away and more in practice;
// a representative subset runs with the oldest and newest kubectl installed here.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, fixture, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ok, fails, tableHeader, tableRows, type KubectlVersion } from '../helpers/kubectl.js';

const VERSIONS: KubectlVersion[] = ['1.27', '1.33'];
const nsFor = (version: KubectlVersion) => `skew-${version.replace('.', '-')}`;

let server: TestServer;
before(async () => {
  server = await startServer({ args: API_ONLY });
  // Namespaces are made here, by the kubectl under test (a protobuf create), so each test stands alone.
  for (const version of VERSIONS) {
    const ns = nsFor(version);
    const out = ok(await server.kubectl(['create', 'namespace', ns], { version }), `kubectl ${version} create namespace`);
    assert.equal(out.trim(), `namespace/${ns} created`);
  }
});

for (const version of VERSIONS) {
  const ns = nsFor(version);
  const k = async (args: string[], input?: string) =>
    ok(await server.kubectl(args, { input, version }), `kubectl ${version}`);

  test(`kubectl ${version}: get pods as a table`, async () => {
    await k(['create', '-n', ns, '-f', '-'], fixture('pod.yaml'));
    const out = await k(['get', 'pods', '-n', ns]);
    assert.deepEqual(tableHeader(out), ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    assert.deepEqual(tableRows(out)[1].slice(0, 4), ['p1', '0/1', 'Pending', '0']);
  });

  test(`kubectl ${version}: apply twice`, async () => {
    const v1 = fixture('web-deployment.yaml');
    assert.equal((await k(['apply', '-n', ns, '-f', '-'], v1)).trim(), 'deployment.apps/web created');
    await k(['annotate', 'deployment', 'web', '-n', ns, 'kept=yes']);
    assert.equal((await k(['apply', '-n', ns, '-f', '-'], v1.replace('nginx:1.25', 'nginx:1.26'))).trim(), 'deployment.apps/web configured');
    const d = JSON.parse(await k(['get', 'deploy', 'web', '-n', ns, '-o', 'json']));
    assert.equal(d.spec.template.spec.containers[0].image, 'nginx:1.26');
    assert.equal(d.spec.template.spec.containers[1].image, 'busybox:1.36');
    assert.equal(d.metadata.annotations.kept, 'yes');
  });

  test(`kubectl ${version}: create deployment (protobuf body)`, async () => {
    assert.equal((await k(['create', 'deployment', 'api', '-n', ns, '--image=nginx:1.25', '--replicas=2'])).trim(), 'deployment.apps/api created');
    assert.equal(await k(['get', 'deploy', 'api', '-n', ns, '-o', 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}']), '2 nginx:1.25');
  });

  test(`kubectl ${version}: patch (strategic merge)`, async () => {
    await k(['create', 'deployment', 'patchme', '-n', ns, '--image=nginx:1.25']);
    const out = await k(['patch', 'deployment', 'patchme', '-n', ns, '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}']);
    assert.equal(out.trim(), 'deployment.apps/patchme patched');
    assert.equal(await k(['get', 'deploy', 'patchme', '-n', ns, '-o', 'jsonpath={.spec.template.spec.containers[*].image}']), 'nginx:1.27');
  });

  test(`kubectl ${version}: auth can-i`, async () => {
    assert.equal((await k(['auth', 'can-i', 'create', 'pods'])).trim(), 'yes');
    const no = await server.kubectl(['auth', 'can-i', '--as', 'system:serviceaccount:default:default', 'create', 'pods'], { version });
    assert.equal(no.code, 1, no.stderr);
    assert.equal(no.stdout.trim(), 'no');
  });

  test(`kubectl ${version}: delete namespace --wait`, async () => {
    const doomed = `${ns}-doomed`;
    await k(['create', 'namespace', doomed]);
    await k(['create', 'configmap', 'inside', '-n', doomed, '--from-literal=a=b']);
    assert.equal((await k(['delete', 'namespace', doomed, '--wait', '--timeout=30s'])).trim(), `namespace "${doomed}" deleted`);
    fails(await server.kubectl(['get', 'namespace', doomed], { version }), new RegExp(`namespaces "${doomed}" not found`));
  });
}
