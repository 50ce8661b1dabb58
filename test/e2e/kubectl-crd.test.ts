// Acceptance (issue 2): a CustomResourceDefinition (namespaced, with an openAPIV3Schema, a status
// subresource and additionalPrinterColumns) and the life of its custom resources through kubectl.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, fixture, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ok, fails, tableHeader, tableRows } from '../helpers/kubectl.js';

let server: TestServer;

async function k(args: string[], input?: string): Promise<string> {
  return ok(await server.kubectl(args, { input }));
}

/** Creates the CronTab CRD (optionally under another group) and waits until it is served. */
async function createCrd(group = 'stable.example.com'): Promise<void> {
  const out = await k(['create', '-f', '-'], fixture('crontab-crd.yaml', { 'stable.example.com': group }));
  assert.equal(out.trim(), `customresourcedefinition.apiextensions.k8s.io/crontabs.${group} created`);
  const est = await k(['wait', '--for', 'condition=Established', '--timeout=30s', `crd/crontabs.${group}`]);
  assert.equal(est.trim(), `customresourcedefinition.apiextensions.k8s.io/crontabs.${group} condition met`);
}

before(async () => {
  server = await startServer({ args: API_ONLY });
  await createCrd();
});

test('the CRD appears in discovery with its short name', async () => {
  const out = await k(['api-resources', '--api-group=stable.example.com']);
  assert.deepEqual(tableHeader(out), ['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND']);
  assert.deepEqual(tableRows(out)[1], ['crontabs', 'ct', 'stable.example.com/v1', 'true', 'CronTab']);
  const crd = JSON.parse(await k(['get', 'crd', 'crontabs.stable.example.com', '-o', 'json']));
  const cond = (t: string) => crd.status.conditions.find((c: any) => c.type === t)?.status;
  assert.equal(cond('NamesAccepted'), 'True');
  assert.equal(cond('Established'), 'True');
  assert.deepEqual(crd.status.acceptedNames.shortNames, ['ct']);
});

test('custom resources: create, get with printer columns, list, patch, delete', async () => {
  await k(['create', 'namespace', 'cr']);
  assert.equal((await k(['create', '-n', 'cr', '-f', '-'], fixture('crontab.yaml'))).trim(), 'crontab.stable.example.com/my-cron created');

  const table = await k(['get', 'crontabs', '-n', 'cr']);
  assert.deepEqual(tableHeader(table), ['NAME', 'SPEC', 'REPLICAS', 'AGE']);
  const row = tableRows(table)[1];
  assert.deepEqual(row.slice(0, 3), ['my-cron', '* * * * */5', '1']);
  assert.match(row[3], /^\d+s$/);

  const list = JSON.parse(await k(['get', 'ct', '-n', 'cr', '-o', 'json']));
  assert.equal(list.items.length, 1);
  const cr = list.items[0];
  assert.equal(cr.apiVersion, 'stable.example.com/v1');
  assert.equal(cr.kind, 'CronTab');
  assert.deepEqual(cr.spec, { cronSpec: '* * * * */5', image: 'my-awesome-cron-image', replicas: 1 });
  assert.equal(cr.metadata.generation, 1);

  const patched = await k(['patch', 'crontab', 'my-cron', '-n', 'cr', '--type=merge', '-p', '{"spec":{"replicas":3}}']);
  assert.equal(patched.trim(), 'crontab.stable.example.com/my-cron patched');
  assert.equal(await k(['get', 'ct', 'my-cron', '-n', 'cr', '-o', 'jsonpath={.spec.replicas}']), '3');
  const jsonPatched = await k(['patch', 'crontab', 'my-cron', '-n', 'cr', '--type=json', '-p', '[{"op":"replace","path":"/spec/image","value":"img:2"}]']);
  assert.equal(jsonPatched.trim(), 'crontab.stable.example.com/my-cron patched');

  // Strategic merge needs Go struct tags; for custom resources the server answers 415 listing the
  // patch types it does accept, and kubectl wraps that message.
  fails(await server.kubectl(['patch', 'crontab', 'my-cron', '-n', 'cr', '-p', '{"spec":{"replicas":4}}']),
    /error: application\/strategic-merge-patch\+json is not supported by stable\.example\.com\/v1, Kind=CronTab: the body of the request was in an unknown format - accepted media types include: application\/json-patch\+json, application\/merge-patch\+json, application\/apply-patch\+yaml$/m);

  const del = await k(['delete', 'crontab', 'my-cron', '-n', 'cr']);
  assert.equal(del.trim(), 'crontab.stable.example.com "my-cron" deleted');
  fails(await server.kubectl(['get', 'crontab', 'my-cron', '-n', 'cr']),
    /Error from server \(NotFound\): crontabs\.stable\.example\.com "my-cron" not found/);
});

test('custom resources: apply twice (JSON merge patch under the hood)', async () => {
  await k(['create', 'namespace', 'cr-apply']);
  const manifest = fixture('crontab.yaml');
  assert.equal((await k(['apply', '-n', 'cr-apply', '-f', '-'], manifest)).trim(), 'crontab.stable.example.com/my-cron created');
  const changed = manifest.replace('my-awesome-cron-image', 'my-awesome-cron-image:2');
  assert.equal((await k(['apply', '-n', 'cr-apply', '-f', '-'], changed)).trim(), 'crontab.stable.example.com/my-cron configured');
  assert.equal(await k(['get', 'ct', 'my-cron', '-n', 'cr-apply', '-o', 'jsonpath={.spec.image}']), 'my-awesome-cron-image:2');
});

test('custom resources: the status subresource owns .status', async () => {
  await k(['create', 'namespace', 'cr-status']);
  await k(['create', '-n', 'cr-status', '-f', '-'], fixture('crontab.yaml'));
  const st = await k(['patch', 'crontab', 'my-cron', '-n', 'cr-status', '--subresource=status', '--type=merge', '-p', '{"status":{"lastRun":"now"}}']);
  assert.equal(st.trim(), 'crontab.stable.example.com/my-cron patched');
  // Writes to the main resource ignore .status once the subresource exists.
  await k(['patch', 'crontab', 'my-cron', '-n', 'cr-status', '--type=merge', '-p', '{"status":{"lastRun":"ignored"}}']);
  const cr = JSON.parse(await k(['get', 'ct', 'my-cron', '-n', 'cr-status', '-o', 'json']));
  assert.equal(cr.status.lastRun, 'now');
  assert.equal(cr.metadata.generation, 1, 'status writes do not bump generation');
});

test('custom resources are validated against the openAPIV3Schema', async () => {
  await k(['create', 'namespace', 'cr-invalid']);
  const wrongType = fixture('crontab.yaml').replace('replicas: 1', 'replicas: "three"');
  fails(await server.kubectl(['create', '-n', 'cr-invalid', '-f', '-'], { input: wrongType }),
    /The CronTab "my-cron" is invalid: spec\.replicas: Invalid value: "string": spec\.replicas in body must be of type integer: "string"/);
  const unknown = fixture('crontab.yaml').replace('replicas: 1', 'replicas: 1\n  colour: blue');
  fails(await server.kubectl(['create', '-n', 'cr-invalid', '-f', '-'], { input: unknown }), /unknown field "spec\.colour"/);
});

test('deleting the CRD removes the resource type', async () => {
  await createCrd('gone.example.com');
  await k(['create', 'namespace', 'cr-gone']);
  await k(['create', '-n', 'cr-gone', '-f', '-'], fixture('crontab.yaml', { 'stable.example.com': 'gone.example.com' }));
  const del = await k(['delete', 'crd', 'crontabs.gone.example.com', '--timeout=30s']);
  assert.equal(del.trim(), 'customresourcedefinition.apiextensions.k8s.io "crontabs.gone.example.com" deleted');
  fails(await server.kubectl(['get', 'crontabs.gone.example.com', '-n', 'cr-gone']), /the server doesn't have a resource type "crontabs"/);
  // The other group's CRD is untouched.
  ok(await server.kubectl(['get', 'crontabs.stable.example.com', '-A']));
});
