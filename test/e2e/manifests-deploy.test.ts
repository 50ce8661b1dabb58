// Auto-deploying manifests end to end (k3s's `server/manifests` folder): files dropped into
// `<data dir>/server/manifests` are applied with real kubectl watching, changes are re-applied, a
// `.skip` file turns one off, a broken file is reported on its Addon and applied once fixed, a CRD
// and its custom resource can share a file, and deleting a file leaves its objects alone. A file
// present before the server starts is applied at start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
const dataDir = mkdtempSync(join(tmpdir(), 'skiff-manifests-'));
const dir = join(dataDir, 'server', 'manifests');
const k = async (args: string[]) => ok(await server.kubectl(args));
const configMapData = async (ns: string, name: string) => {
  const r = await server.kubectl(['get', 'configmap', name, '-n', ns, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout).data : undefined;
};

before(async () => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'early.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: early }\ndata: { at: start }\n');
  server = await startServer({ dataDir });
});
after(async () => {
  await server?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a file present at start is applied (no namespace: default) and tracked by an Addon', async () => {
  assert.deepEqual(await eventually(() => configMapData('default', 'early'), 'the early ConfigMap'), { at: 'start' });
  const addon = JSON.parse(await k(['get', 'addon', 'early', '-n', 'kube-system', '-o', 'json']));
  assert.equal(addon.spec.source, join(dir, 'early.yaml'));
  assert.match(await k(['get', 'addons', '-A']), /kube-system\s+early\s+\S+early\.yaml\s+[0-9a-f]{64}/);
});

test('files added and changed later are applied; several documents, a namespace among them', async () => {
  mkdirSync(join(dir, 'apps'));
  const app = (v: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: edge-app }\n---\n`
    + `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings, namespace: edge-app }\ndata: { version: "${v}" }\n`;
  writeFileSync(join(dir, 'apps', 'edge.yaml'), app('1'));
  assert.deepEqual(await eventually(() => configMapData('edge-app', 'settings'), 'the ConfigMap from a new file'), { version: '1' });
  writeFileSync(join(dir, 'apps', 'edge.yaml'), app('2'));
  await eventually(async () => (await configMapData('edge-app', 'settings'))?.version === '2', 'the changed file re-applied');
  // Someone edits the object by hand: the file wins again only when the file changes (as in k3s).
  await k(['patch', 'configmap', 'settings', '-n', 'edge-app', '--type=merge', '-p', '{"data":{"extra":"by-hand"}}']);
  writeFileSync(join(dir, 'apps', 'edge.yaml'), app('3'));
  await eventually(async () => (await configMapData('edge-app', 'settings'))?.version === '3', 'the third version');
  assert.equal((await configMapData('edge-app', 'settings')).extra, 'by-hand', 'fields the file does not own are left alone');
});

test('a .skip file turns a manifest off; a broken manifest is reported and applied once fixed', async () => {
  writeFileSync(join(dir, 'off.yaml.skip'), '');
  writeFileSync(join(dir, 'off.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: off }\n');
  writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: broken\n');
  await eventually(async () => /ApplyManifestFailed/.test((await server.kubectl(['describe', 'addon', 'broken', '-n', 'kube-system'])).stdout), 'the failure event on the Addon');
  assert.equal(await configMapData('default', 'off'), undefined, 'the skipped file was not applied');
  writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: broken }\ndata: { fixed: "yes" }\n');
  assert.deepEqual(await eventually(() => configMapData('default', 'broken'), 'the fixed manifest applied'), { fixed: 'yes' });
});

test('a CRD and its custom resource in one file; deleting the file leaves the objects', async () => {
  writeFileSync(join(dir, 'widgets.yaml'), `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: widgets.edge.example.com }
spec:
  group: edge.example.com
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
  - name: v1
    served: true
    storage: true
    schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
---
apiVersion: edge.example.com/v1
kind: Widget
metadata: { name: w1 }
spec: { size: 3 }
`);
  const w = await eventually(async () => {
    const r = await server.kubectl(['get', 'widget', 'w1', '-o', 'json']);
    return r.code === 0 && JSON.parse(r.stdout);
  }, 'the custom resource applied after its CRD', 45_000);
  assert.equal(w.spec.size, 3);
  rmSync(join(dir, 'widgets.yaml'));
  rmSync(join(dir, 'early.yaml'));
  await new Promise((r) => setTimeout(r, 6_000));
  await k(['get', 'widget', 'w1']);
  await k(['get', 'configmap', 'early']);
});
