// HttpClient against a real `skiff server`: every verb, Status replies as ApiErrors with the server's
// code/reason/message, and watches (events, selectors, stop, 410 for a compacted version).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { HttpClient } from '../../src/client/http.js';
import { Resources, isConflict, isGone, isNotFound, type ClientWatchEvent } from '../../src/client/types.js';
import { ApiError } from '../../src/api/status.js';
import type { KObject } from '../../src/api/object.js';

let server: TestServer;
let client: HttpClient;

before(async () => {
  // A tiny watch cache makes "too old resource version" reachable in a few writes.
  server = await startServer({ args: ['--watch-cache-size', '5'] });
  client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'client-http-test/1.0' });
});
after(async () => {
  client?.close();
  await server?.dispose();
});

async function rejects(p: Promise<unknown>, code: number, reason?: string): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected an ApiError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (reason) assert.equal(e.reason, reason);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

const cm = (name: string, labels?: Record<string, string>): KObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { k: 'v' } });

test('create, get, list, update (CAS), status, delete', async () => {
  const made = await client.create(Resources.configMaps, 'default', cm('crud', { app: 'crud' }));
  assert.equal(made.metadata.namespace, 'default');
  // The default field manager is the User-Agent's program name.
  assert.equal(made.metadata.managedFields?.[0]?.manager, 'client-http-test');
  assert.equal((await client.get(Resources.configMaps, 'default', 'crud'))?.metadata.uid, made.metadata.uid);
  assert.equal(await client.get(Resources.configMaps, 'default', 'no-such'), undefined);
  const exists = await rejects(client.create(Resources.configMaps, 'default', cm('crud')), 409, 'AlreadyExists');
  assert.equal(exists.message, 'configmaps "crud" already exists');

  const listed = await client.list(Resources.configMaps, 'default', { labelSelector: 'app=crud' });
  assert.deepEqual(listed.items.map((o) => o.metadata.name), ['crud']);
  assert.match(listed.resourceVersion, /^\d+$/);
  const byField = await client.list(Resources.configMaps, undefined, { fieldSelector: 'metadata.name=crud' });
  assert.equal(byField.items.length, 1);

  const next = structuredClone(made) as any;
  next.data.k = 'v2';
  const updated = await client.update(Resources.configMaps, 'default', next) as any;
  assert.equal(updated.data.k, 'v2');
  const stale = structuredClone(made) as any;
  stale.data.k = 'stale';
  const conflict = await rejects(client.update(Resources.configMaps, 'default', stale), 409, 'Conflict');
  assert.ok(isConflict(conflict));
  assert.equal(conflict.message, 'Operation cannot be fulfilled on configmaps "crud": the object has been modified; please apply your changes to the latest version and try again');
  assert.equal(conflict.details?.name, 'crud');

  const ns = structuredClone(await client.get(Resources.namespaces, undefined, 'default')) as any;
  ns.status = { ...ns.status, conditions: [{ type: 'Tested', status: 'True' }] };
  const nsAfter = await client.updateStatus(Resources.namespaces, undefined, ns) as any;
  assert.deepEqual(nsAfter.status.conditions, [{ type: 'Tested', status: 'True' }]);

  const gone = await client.delete(Resources.configMaps, 'default', 'crud');
  assert.equal(gone.metadata.name, 'crud');
  const nf = await rejects(client.delete(Resources.configMaps, 'default', 'crud'), 404, 'NotFound');
  assert.ok(isNotFound(nf));
  assert.equal(nf.message, 'configmaps "crud" not found');
});

test('patch types and server-side apply', async () => {
  await client.create(Resources.configMaps, 'default', cm('patched', { a: '1' }));
  let o: any = await client.patch(Resources.configMaps, 'default', 'patched', 'merge', { metadata: { labels: { b: '2' } } });
  assert.deepEqual(o.metadata.labels, { a: '1', b: '2' });
  o = await client.patch(Resources.configMaps, 'default', 'patched', 'json', [{ op: 'replace', path: '/data/k', value: 'j' }]);
  assert.equal(o.data.k, 'j');
  o = await client.patch(Resources.configMaps, 'default', 'patched', 'strategic', { data: { s: 's' } });
  assert.deepEqual(o.data, { k: 'j', s: 's' });

  const applied = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' }, data: { x: '1' } };
  o = await client.patch(Resources.configMaps, 'default', 'applied', 'apply', applied, { fieldManager: 'one' });
  assert.equal(o.data.x, '1');
  const changed = { ...applied, data: { x: '2' } };
  await rejects(client.patch(Resources.configMaps, 'default', 'applied', 'apply', changed, { fieldManager: 'two' }), 409, 'Conflict');
  o = await client.patch(Resources.configMaps, 'default', 'applied', 'apply', changed, { fieldManager: 'two', force: true });
  assert.equal(o.data.x, '2');
});

test('delete options reach the server: preconditions and propagation', async () => {
  const held = await client.create(Resources.configMaps, 'default', { ...cm('held'), metadata: { name: 'held', finalizers: ['example.com/hold'] } });
  const pre = await rejects(client.delete(Resources.configMaps, 'default', 'held', { preconditions: { uid: 'wrong' } }), 409, 'Conflict');
  assert.match(pre.message, /Precondition failed: UID in precondition: wrong/);
  const terminating = await client.delete(Resources.configMaps, 'default', 'held', { propagationPolicy: 'Orphan' });
  assert.ok(terminating.metadata.deletionTimestamp);
  assert.ok(terminating.metadata.finalizers?.includes('orphan'));
  assert.equal(terminating.metadata.uid, held.metadata.uid);
});

test('validation failures and unauthenticated calls keep the server\'s Status', async () => {
  const bad = await rejects(client.create(Resources.configMaps, 'default', cm('Not_A_Name')), 422, 'Invalid');
  assert.match(bad.message, /^ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name"/);
  assert.equal(bad.details?.causes?.[0]?.field, 'metadata.name');
  const anonymous = new HttpClient({ server: server.url, caPem: server.caPem });
  try {
    await rejects(anonymous.list(Resources.configMaps, 'default'), 401, 'Unauthorized');
  } finally {
    anonymous.close();
  }
});

test('watch: events after a list, selectors, normal stop', async () => {
  const listed = await client.list(Resources.configMaps, 'default');
  const events: string[] = [];
  const selected: string[] = [];
  const w = client.watch(Resources.configMaps, 'default', listed.resourceVersion, (e) => events.push(`${e.type} ${e.object.metadata.name}`));
  const ws = client.watch(Resources.configMaps, 'default', listed.resourceVersion, (e) => selected.push(`${e.type} ${e.object.metadata.name}`), { labelSelector: 'watched=yes' });
  try {
    await client.create(Resources.configMaps, 'default', cm('w1', { watched: 'yes' }));
    await client.patch(Resources.configMaps, 'default', 'w1', 'merge', { data: { k: 'changed' } });
    await client.patch(Resources.configMaps, 'default', 'w1', 'merge', { metadata: { labels: { watched: 'no' } } });
    await client.delete(Resources.configMaps, 'default', 'w1');
    const deadline = Date.now() + 5000;
    while ((events.length < 4 || selected.length < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(events, ['ADDED w1', 'MODIFIED w1', 'MODIFIED w1', 'DELETED w1']);
    assert.deepEqual(selected, ['ADDED w1', 'MODIFIED w1', 'DELETED w1']);
  } finally {
    w.stop();
    ws.stop();
  }
  assert.equal(await w.done, undefined);
  assert.equal(await ws.done, undefined);
});

test('watch from a compacted version ends with ApiError 410', async () => {
  const first = await client.create(Resources.configMaps, 'default', cm('churn'));
  for (let i = 0; i < 8; i++) await client.patch(Resources.configMaps, 'default', 'churn', 'merge', { data: { i: String(i) } });
  const events: ClientWatchEvent[] = [];
  const w = client.watch(Resources.configMaps, 'default', first.metadata.resourceVersion, (e) => events.push(e));
  const err = await w.done;
  assert.ok(isGone(err), `expected 410, got ${err}`);
  assert.equal((err as ApiError).reason, 'Expired');
  assert.match(err!.message, /too old resource version/);
  assert.equal(events.length, 0);
});

test('discovery: preferred resources, each once, no subresources; namespaces/finalize', async () => {
  const served = await client.preferredResources();
  const find = (group: string, resource: string) => served.filter((r) => r.group === group && r.resource === resource);
  assert.deepEqual(find('autoscaling', 'horizontalpodautoscalers').map((r) => r.version), ['v2'], 'once, preferred version');
  assert.deepEqual(find('apps', 'deployments').map((r) => [r.version, r.kind, r.namespaced]), [['v1', 'Deployment', true]]);
  assert.deepEqual(find('', 'pods').map((r) => [r.version, r.namespaced, r.verbs.includes('delete')]), [['v1', true, true]]);
  assert.deepEqual(find('', 'nodes').map((r) => r.namespaced), [false]);
  assert.ok(served.every((r) => !r.resource.includes('/')), 'no subresources');

  const ns = await client.create<any>(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'finalize-me' } });
  assert.deepEqual(ns.spec?.finalizers, ['kubernetes']);
  const next = structuredClone(ns);
  next.spec.finalizers = [];
  const finalized = await client.finalizeNamespace<any>(next);
  assert.deepEqual(finalized.spec?.finalizers ?? [], []);
  await client.delete(Resources.namespaces, undefined, 'finalize-me');
  assert.equal(await client.get(Resources.namespaces, undefined, 'finalize-me'), undefined, 'no finalizer left: deleted at once');
});
