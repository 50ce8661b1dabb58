// Acceptance (issue 2): what kubectl learns about the server before touching objects: version,
// cluster-info, api-resources (aggregated discovery) and explain (OpenAPI v3).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok, tableHeader, tableRows } from '../helpers/kubectl.js';

let server: TestServer;
before(async () => { server = await startServer(); });

// kubectl's cluster-info colours its output with ANSI escapes even when not on a terminal.
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

test('kubectl version reports the server as 1.32 +skiff', async () => {
  const out = JSON.parse(ok(await server.kubectl(['version', '-o', 'json'])));
  assert.equal(out.serverVersion.major, '1');
  assert.equal(out.serverVersion.minor, '32');
  assert.match(out.serverVersion.gitVersion, /^v1\.32\.\d+\+skiff/);
  assert.match(out.clientVersion.gitVersion, /^v1\.32\./);

  const plain = ok(await server.kubectl(['version']));
  assert.match(plain, /^Server Version: v1\.32\.\d+\+skiff/m);
  // A skew warning would mean the dispatcher-facing /version and the binary disagree.
  assert.doesNotMatch(plain, /WARNING: version difference/);
});

test('kubectl cluster-info names the control plane URL', async () => {
  const out = stripAnsi(ok(await server.kubectl(['cluster-info'])));
  assert.match(out, new RegExp(`Kubernetes control plane is running at ${server.url.replace(/\./g, '\\.')}\\b`));
});

test('kubectl api-resources lists built-in and extension kinds with their columns', async () => {
  const out = ok(await server.kubectl(['api-resources']));
  assert.deepEqual(tableHeader(out), ['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND']);
  const byName = new Map(tableRows(out).slice(1).map((r) => [`${r[0]} ${r.length === 5 ? r[2] : r[1]}`, r]));
  const expect = (name: string, apiVersion: string, row: string[]) =>
    assert.deepEqual(byName.get(`${name} ${apiVersion}`), row, `row for ${name} (${apiVersion}) in:\n${out}`);
  expect('pods', 'v1', ['pods', 'po', 'v1', 'true', 'Pod']);
  expect('nodes', 'v1', ['nodes', 'no', 'v1', 'false', 'Node']);
  expect('namespaces', 'v1', ['namespaces', 'ns', 'v1', 'false', 'Namespace']);
  expect('services', 'v1', ['services', 'svc', 'v1', 'true', 'Service']);
  expect('deployments', 'apps/v1', ['deployments', 'deploy', 'apps/v1', 'true', 'Deployment']);
  expect('customresourcedefinitions', 'apiextensions.k8s.io/v1',
    ['customresourcedefinitions', 'crd,crds', 'apiextensions.k8s.io/v1', 'false', 'CustomResourceDefinition']);
  // Resources without short names leave the cell empty, so their row has four cells.
  expect('jobs', 'batch/v1', ['jobs', 'batch/v1', 'true', 'Job']);
  expect('selfsubjectaccessreviews', 'authorization.k8s.io/v1',
    ['selfsubjectaccessreviews', 'authorization.k8s.io/v1', 'false', 'SelfSubjectAccessReview']);
  // Subresources are not resources of their own in this listing.
  assert.doesNotMatch(out, /^pods\/status\b/m);

  const apps = ok(await server.kubectl(['api-resources', '--api-group=apps', '-o', 'name']));
  assert.deepEqual(apps.trim().split('\n').sort(),
    ['controllerrevisions.apps', 'daemonsets.apps', 'deployments.apps', 'replicasets.apps', 'statefulsets.apps']);
});

test('kubectl api-versions lists group versions', async () => {
  const out = ok(await server.kubectl(['api-versions'])).trim().split('\n');
  for (const gv of ['v1', 'apps/v1', 'batch/v1', 'apiextensions.k8s.io/v1', 'rbac.authorization.k8s.io/v1']) {
    assert.ok(out.includes(gv), `${gv} missing from:\n${out.join('\n')}`);
  }
});

test('legacy per-group-version discovery documents are served', async () => {
  // `auth can-i` and older clients read these instead of the aggregated form.
  const core = JSON.parse(ok(await server.kubectl(['get', '--raw', '/api/v1'])));
  assert.equal(core.kind, 'APIResourceList');
  assert.equal(core.groupVersion, 'v1');
  const pods = core.resources.find((r: any) => r.name === 'pods');
  assert.deepEqual([pods?.kind, pods?.namespaced, pods?.shortNames], ['Pod', true, ['po']]);
  assert.ok(core.resources.some((r: any) => r.name === 'pods/status'), 'subresources are listed as pods/status');

  const apps = JSON.parse(ok(await server.kubectl(['get', '--raw', '/apis/apps/v1'])));
  assert.equal(apps.groupVersion, 'apps/v1');
  assert.ok(apps.resources.some((r: any) => r.name === 'deployments/scale' && r.kind === 'Scale'));
});

test('kubectl explain deployment.spec describes replicas and template', async () => {
  const out = ok(await server.kubectl(['explain', 'deployment.spec']));
  assert.match(out, /^GROUP:\s+apps$/m);
  assert.match(out, /^KIND:\s+Deployment$/m);
  assert.match(out, /^VERSION:\s+v1$/m);
  assert.match(out, /^FIELD: spec <DeploymentSpec>$/m);
  assert.match(out, /^\s+replicas\s+<integer>$/m);
  assert.match(out, /^\s+template\s+<PodTemplateSpec> -required-$/m);
  assert.match(out, /^\s+selector\s+<LabelSelector> -required-$/m);

  const field = ok(await server.kubectl(['explain', 'pods.spec.containers.image']));
  assert.match(field, /^FIELD: image <string>$/m);
});
