// LocalClient against a real store, registry and ObjectService: the same answers the HTTP API gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import { Resources, isConflict, isGone, isNotFound, type ClientWatchEvent } from '../../src/client/types.js';
import { ApiError } from '../../src/api/status.js';
import type { KObject } from '../../src/api/object.js';
import { LoopBudget } from '../../src/util/loop-budget.js';

const cm = (name: string, labels?: Record<string, string>, data: Record<string, string> = { k: 'v' }): KObject =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data });

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

test('create, get and list; returned objects are the frozen cached ones', async (t) => {
  const { client } = await startLocalApi(t);
  const made = await client.create(Resources.configMaps, 'default', cm('a', { app: 'x' }));
  assert.equal(made.metadata.namespace, 'default');
  assert.ok(made.metadata.uid && made.metadata.resourceVersion);
  assert.ok(Object.isFrozen(made) && Object.isFrozen(made.metadata));
  const got = await client.get(Resources.configMaps, 'default', 'a');
  assert.equal(got?.metadata.uid, made.metadata.uid);
  assert.equal(await client.get(Resources.configMaps, 'default', 'missing'), undefined);
  // The field manager is the actor's, or the per-call one.
  assert.equal(made.metadata.managedFields?.[0]?.manager, 'kube-controller-manager');
  const b = await client.create(Resources.configMaps, 'default', cm('b'), { fieldManager: 'other' });
  assert.equal(b.metadata.managedFields?.[0]?.manager, 'other');

  const all = await client.list(Resources.configMaps, 'default');
  assert.deepEqual(all.items.map((o) => o.metadata.name).sort(), ['a', 'b']);
  assert.equal(all.resourceVersion, b.metadata.resourceVersion);
  await rejects(client.create(Resources.configMaps, 'default', cm('a')), 409, 'AlreadyExists');
});

test('list filters by label and field selectors and pages with limit/continue', async (t) => {
  const { client } = await startLocalApi(t);
  for (const n of ['a', 'b', 'c', 'd']) await client.create(Resources.configMaps, 'default', cm(n, { tier: n < 'c' ? 'web' : 'db' }));
  await client.create(Resources.configMaps, 'kube-system', cm('e', { tier: 'web' }));

  const web = await client.list(Resources.configMaps, undefined, { labelSelector: 'tier=web' });
  assert.deepEqual(web.items.map((o) => o.metadata.name).sort(), ['a', 'b', 'e']);
  const named = await client.list(Resources.configMaps, 'default', { fieldSelector: 'metadata.name=c' });
  assert.deepEqual(named.items.map((o) => o.metadata.name), ['c']);
  await rejects(client.list(Resources.configMaps, 'default', { fieldSelector: 'spec.nope=1' }), 400);

  const names: string[] = [];
  let cont: string | undefined;
  let pages = 0;
  do {
    const page = await client.list(Resources.configMaps, 'default', { limit: 3, continue: cont });
    names.push(...page.items.map((o) => o.metadata.name!));
    cont = page.continue;
    pages++;
  } while (cont);
  assert.deepEqual(names, ['a', 'b', 'c', 'd']);
  assert.equal(pages, 2);
});

test('update is compare-and-swap on resourceVersion; updateStatus writes only status', async (t) => {
  const { client } = await startLocalApi(t);
  const first = await client.create(Resources.configMaps, 'default', cm('a'));
  const next = structuredClone(first);
  next.data = { k: 'v2' };
  const second = await client.update(Resources.configMaps, 'default', next);
  assert.equal((second as any).data.k, 'v2');
  assert.notEqual(second.metadata.resourceVersion, first.metadata.resourceVersion);

  const stale = structuredClone(first);
  stale.data = { k: 'stale' };
  const err = await rejects(client.update(Resources.configMaps, 'default', stale), 409, 'Conflict');
  assert.ok(isConflict(err));
  assert.match(err.message, /Operation cannot be fulfilled on configmaps "a": the object has been modified/);

  // Without a resourceVersion the update is unconditional.
  const blind = structuredClone(first);
  delete blind.metadata.resourceVersion;
  blind.data = { k: 'blind' };
  assert.equal(((await client.update(Resources.configMaps, 'default', blind)) as any).data.k, 'blind');
  await rejects(client.update(Resources.configMaps, 'default', cm('missing')), 404, 'NotFound');

  const ns = await client.get(Resources.namespaces, undefined, 'default');
  const nsNext = structuredClone(ns!) as any;
  nsNext.metadata.labels = { changed: 'yes' };
  nsNext.status = { phase: 'Active', conditions: [{ type: 'X', status: 'True' }] };
  const afterStatus = await client.updateStatus(Resources.namespaces, undefined, nsNext) as any;
  assert.deepEqual(afterStatus.status.conditions, [{ type: 'X', status: 'True' }]);
  assert.equal(afterStatus.metadata.labels?.changed, undefined, 'a status write must not change metadata');
  await rejects(client.updateStatus(Resources.configMaps, 'default', structuredClone(second)), 404);
});

test('patch: merge, strategic, json and server-side apply', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.configMaps, 'default', cm('a', { one: '1' }));
  let o: any = await client.patch(Resources.configMaps, 'default', 'a', 'merge', { metadata: { labels: { two: '2' } } });
  assert.deepEqual(o.metadata.labels, { one: '1', two: '2' });
  o = await client.patch(Resources.configMaps, 'default', 'a', 'json', [{ op: 'remove', path: '/metadata/labels/one' }]);
  assert.deepEqual(o.metadata.labels, { two: '2' });

  const pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' },
    spec: { containers: [{ name: 'a', image: 'busybox' }, { name: 'b', image: 'busybox' }] },
  };
  await client.create(Resources.pods, 'default', pod as KObject);
  // Strategic merge merges containers by name instead of replacing the list.
  o = await client.patch(Resources.pods, 'default', 'p', 'strategic', { spec: { containers: [{ name: 'b', image: 'busybox:2' }] } });
  assert.deepEqual(o.spec.containers.map((c: any) => `${c.name}=${c.image}`), ['a=busybox', 'b=busybox:2']);

  await rejects(client.patch(Resources.configMaps, 'default', 'missing', 'merge', { data: {} }), 404);
  await rejects(client.patch(Resources.configMaps, 'default', 'a', 'apply', { data: {} }), 400);

  // Apply creates, then conflicts with another manager's field unless forced.
  const applied = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data: { x: '1' } };
  o = await client.patch(Resources.configMaps, 'default', 'ssa', 'apply', applied, { fieldManager: 'mgr-a' });
  assert.equal(o.data.x, '1');
  const changed = { ...applied, data: { x: '2' } };
  const conflict = await rejects(client.patch(Resources.configMaps, 'default', 'ssa', 'apply', changed, { fieldManager: 'mgr-b' }), 409);
  assert.match(conflict.message, /conflict/i);
  o = await client.patch(Resources.configMaps, 'default', 'ssa', 'apply', changed, { fieldManager: 'mgr-b', force: true });
  assert.equal(o.data.x, '2');
});

test('delete: gone, held by finalizers, preconditions, 404', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.configMaps, 'default', cm('a'));
  const gone = await client.delete(Resources.configMaps, 'default', 'a');
  assert.equal(gone.metadata.name, 'a');
  assert.equal(await client.get(Resources.configMaps, 'default', 'a'), undefined);
  const nf = await rejects(client.delete(Resources.configMaps, 'default', 'a'), 404);
  assert.ok(isNotFound(nf));

  const held = await client.create(Resources.configMaps, 'default', { ...cm('b'), metadata: { name: 'b', finalizers: ['example.com/hold'] } });
  await rejects(client.delete(Resources.configMaps, 'default', 'b', { preconditions: { uid: 'not-the-uid' } }), 409, 'Conflict');
  const terminating = await client.delete(Resources.configMaps, 'default', 'b', { propagationPolicy: 'Foreground' });
  assert.ok(terminating.metadata.deletionTimestamp);
  assert.deepEqual([...(terminating.metadata.finalizers ?? [])].sort(), ['example.com/hold', 'foregroundDeletion']);
  assert.equal(terminating.metadata.uid, held.metadata.uid);
});

test('unknown resources are 404; versions served by conversion are refused in process', async (t) => {
  const { client } = await startLocalApi(t);
  await rejects(client.get({ group: 'example.com', version: 'v1', resource: 'widgets' }, 'default', 'x'), 404);
  await rejects(client.list({ group: 'autoscaling', version: 'v1', resource: 'horizontalpodautoscalers' }), 400);
  const w = client.watch({ group: 'example.com', version: 'v1', resource: 'widgets' }, undefined, '0', () => {});
  const err = await w.done;
  assert.ok(err instanceof ApiError && err.code === 404);
});

test('watch: changes after a version, initial ADDED events for "0", selector entry and exit', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.configMaps, 'default', cm('pre', { app: 'x' }));
  const listed = await client.list(Resources.configMaps, 'default');

  const all: string[] = [];
  const selected: string[] = [];
  const initial: string[] = [];
  const w1 = client.watch(Resources.configMaps, 'default', listed.resourceVersion, (e) => all.push(`${e.type} ${e.object.metadata.name}`));
  const w2 = client.watch(Resources.configMaps, 'default', listed.resourceVersion, (e) => selected.push(`${e.type} ${e.object.metadata.name}`), { labelSelector: 'app=x' });
  const w3 = client.watch(Resources.configMaps, 'default', '0', (e) => initial.push(`${e.type} ${e.object.metadata.name}`));
  t.after(() => { w1.stop(); w2.stop(); w3.stop(); });

  await client.create(Resources.configMaps, 'default', cm('a', { app: 'y' }));
  await client.patch(Resources.configMaps, 'default', 'a', 'merge', { metadata: { labels: { app: 'x' } } });   // enters the filter
  await client.patch(Resources.configMaps, 'default', 'a', 'merge', { data: { k: 'w' } });
  await client.patch(Resources.configMaps, 'default', 'pre', 'merge', { metadata: { labels: { app: 'z' } } });   // leaves it
  await client.delete(Resources.configMaps, 'default', 'a');
  await client.create(Resources.configMaps, 'kube-system', cm('elsewhere', { app: 'x' }));

  assert.deepEqual(all, ['ADDED a', 'MODIFIED a', 'MODIFIED a', 'MODIFIED pre', 'DELETED a']);
  assert.deepEqual(selected, ['ADDED a', 'MODIFIED a', 'DELETED pre', 'DELETED a']);
  assert.deepEqual(initial.slice(0, 1), ['ADDED pre']);
  assert.equal(initial.length, 6);

  // Stopping ends the watch normally and delivers nothing more.
  w1.stop();
  assert.equal(await w1.done, undefined);
  await client.create(Resources.configMaps, 'default', cm('late'));
  assert.equal(all.length, 5);
});

test('watch from a compacted version ends with a 410', async (t) => {
  const { client } = await startLocalApi(t, { ringSize: 3 });
  const first = await client.create(Resources.configMaps, 'default', cm('a'));
  for (let i = 0; i < 5; i++) await client.patch(Resources.configMaps, 'default', 'a', 'merge', { data: { i: String(i) } });
  const events: ClientWatchEvent[] = [];
  const w = client.watch(Resources.configMaps, 'default', first.metadata.resourceVersion, (e) => events.push(e));
  const err = await w.done;
  assert.ok(isGone(err), `expected 410, got ${err}`);
  assert.match(err!.message, /too old resource version/);
  assert.equal(events.length, 0);
});

test('a CRD\'s selectableFields select in list and watch, as over HTTP', async (t) => {
  const { client } = await startLocalApi(t);
  const widgets = { group: 'example.com', version: 'v1', resource: 'widgets' };
  await client.create(Resources.customResourceDefinitions, undefined, {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [{
        name: 'v1', served: true, storage: true, selectableFields: [{ jsonPath: '.spec.color' }],
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { color: { type: 'string' }, size: { type: 'integer' } } } } } },
      }],
    },
  } as KObject);
  const widget = (name: string, color: string): KObject => ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name }, spec: { color, size: 1 } } as KObject);
  await client.create(widgets, 'default', widget('w1', 'red'));
  await client.create(widgets, 'default', widget('w2', 'blue'));

  const red = await client.list(widgets, 'default', { fieldSelector: 'spec.color=red' });
  assert.deepEqual(red.items.map((o) => o.metadata.name), ['w1']);
  const notRed = await client.list(widgets, 'default', { fieldSelector: 'spec.color!=red' });
  assert.deepEqual(notRed.items.map((o) => o.metadata.name), ['w2']);
  // A field the CRD does not declare selectable is refused, as the HTTP API refuses it.
  await rejects(client.list(widgets, 'default', { fieldSelector: 'spec.size=1' }), 400);

  const seen: string[] = [];
  const w = client.watch(widgets, 'default', '0', (e) => seen.push(`${e.type} ${e.object.metadata.name}`), { fieldSelector: 'spec.color=red' });
  t.after(() => w.stop());
  await client.patch(widgets, 'default', 'w2', 'merge', { spec: { color: 'red' } });   // enters the selection
  await client.patch(widgets, 'default', 'w1', 'merge', { spec: { color: 'green' } }); // leaves it
  assert.deepEqual(seen, ['ADDED w1', 'ADDED w2', 'DELETED w1']);
});

test('a client with a loop budget makes its writes wait for a seat; reads and other clients never wait', async (t) => {
  const { client } = await startLocalApi(t);
  const budget = new LoopBudget({ initial: 1, min: 1, sampleLag: false });
  t.after(() => budget.stop());
  const loops = client.withBudget(budget);
  const writes = [
    loops.create(Resources.configMaps, 'default', cm('one')),
    loops.create(Resources.configMaps, 'default', cm('two')),
    loops.as({ user: 'system:other', groups: ['system:masters'], manager: 'other' }).create(Resources.configMaps, 'default', cm('three')),
  ];
  // The second and third wait behind the first (the budget carries over to `as`); the unbudgeted client does not.
  assert.equal(budget.stats().waiting, 2);
  await client.create(Resources.configMaps, 'default', cm('free'));
  assert.equal(await loops.get(Resources.configMaps, 'default', 'free').then((o) => o?.metadata.name), 'free');
  const made = await Promise.all(writes);
  assert.deepEqual(made.map((o) => o.metadata.name), ['one', 'two', 'three']);
  assert.equal(made[2]!.metadata.managedFields?.[0]?.manager, 'other');
  // An update waits too, and is made from the object as it was when it was asked for.
  const body = structuredClone(made[0]!) as KObject & { data: Record<string, string> };
  body.data = { k: 'asked' };
  const updating = loops.update(Resources.configMaps, 'default', body);
  body.data = { k: 'changed after' };
  assert.deepEqual((await updating as KObject & { data: Record<string, string> }).data, { k: 'asked' });
  assert.equal(budget.stats().waitedTotal, 2);
});
