import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompactedError, RevisionConflictError, KeyNotFoundError, type WatchEvent } from '../../src/storage/types.js';
import { openStore } from '../../src/storage/index.js';
import { dbFile, openCache, tempDir } from '../helpers/storage-temp.js';

const pod = (ns: string, name: string, extra: Record<string, unknown> = {}) =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, resourceVersion: '999' }, ...extra });

test('writes resolve with the cached, frozen object (read-your-writes)', async (t) => {
  const { store, backend } = await openCache(t, dbFile(t));
  const key = '/core/pods/default/a';
  const created = await store.create(key, pod('default', 'a'));
  assert.equal(created.modRevision, 1);
  assert.equal(created.obj.metadata.resourceVersion, '1');
  assert.equal(store.get(key), created);
  assert.ok(Object.isFrozen(created.obj) && Object.isFrozen(created.obj.metadata));
  assert.equal(created.json(), created.json());
  assert.equal(JSON.parse(created.json()).metadata.resourceVersion, '1');
  // The stored text carries no resourceVersion: the row's revision is the truth.
  assert.equal(JSON.parse((await backend.get(key))!.value).metadata.resourceVersion, undefined);

  const updated = await store.update(key, { ...created.obj, spec: { x: 1 } }, 1);
  assert.equal(updated.obj.metadata.resourceVersion, '2');
  assert.equal(updated.createRevision, 1);
  assert.equal(store.revision(), 2);
  await assert.rejects(store.update(key, created.obj, 1), RevisionConflictError);

  const deleted = await store.delete(key);
  assert.equal(deleted.modRevision, 3);
  assert.equal(deleted.obj.metadata.resourceVersion, '3');
  assert.deepEqual(deleted.obj.spec, { x: 1 });
  assert.equal(store.get(key), undefined);
  await assert.rejects(store.delete(key), KeyNotFoundError);
});

test('a new version shares every unchanged part with the one before; empty objects and arrays are shared; texts are encoded again when needed', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  const key = '/core/pods/default/s';
  const spec = { containers: [{ name: 'c', image: 'pause', ports: [{ containerPort: 80 }] }], nodeName: '' };
  const v1 = await store.create(key, pod('default', 's', { spec, status: { phase: 'Pending', conditions: [{ type: 'A' }] } }));
  const text1 = v1.json();
  const v2 = await store.update(key, { ...structuredClone(v1.obj), status: { phase: 'Running', conditions: [{ type: 'A' }] } }, v1.modRevision);
  // Unchanged parts are the previous version's own (frozen) objects; changed ones are new.
  assert.equal(v2.obj.spec, v1.obj.spec);
  assert.equal(v2.obj.status.conditions, v1.obj.status.conditions);
  assert.notEqual(v2.obj.status, v1.obj.status);
  assert.notEqual(v2.obj.metadata, v1.obj.metadata);
  assert.ok(Object.isFrozen(v2.obj) && Object.isFrozen(v2.obj.status));
  // Reordered keys or a changed member anywhere below break the sharing up to the top.
  const changed: Record<string, any> = structuredClone(v2.obj);
  changed.spec.containers[0].ports[0].containerPort = 81;
  changed.status = { conditions: [{ type: 'A' }], phase: 'Running' };
  const v3 = await store.update(key, changed, v2.modRevision);
  assert.notEqual(v3.obj.spec, v2.obj.spec);
  assert.notEqual(v3.obj.spec.containers, v2.obj.spec.containers);
  assert.equal(v3.obj.spec.nodeName, '');
  assert.notEqual(v3.obj.status, v2.obj.status);
  assert.deepEqual(Object.keys(v3.obj.status), ['conditions', 'phase']);
  assert.equal(v3.obj.status.conditions, v2.obj.status.conditions);
  assert.equal(v3.obj.spec.containers[0].ports[0].containerPort, 81);
  // The superseded version still encodes to the same text (a watch replaying the ring needs it).
  assert.equal(v1.json(), text1);
  // Empty objects and arrays are one frozen instance across objects.
  const e1 = await store.create('/core/pods/default/e1', pod('default', 'e1', { spec: { securityContext: {}, volumes: [] } }));
  const e2 = await store.create('/core/pods/default/e2', pod('default', 'e2', { spec: { securityContext: {}, volumes: [] } }));
  assert.equal(e1.obj.spec.securityContext, e2.obj.spec.securityContext);
  assert.equal(e1.obj.spec.volumes, e2.obj.spec.volumes);
  assert.ok(Object.isFrozen(e1.obj.spec.securityContext) && Object.isFrozen(e1.obj.spec.volumes));
  assert.equal(e1.json(), '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"e1","namespace":"default","resourceVersion":"4"},"spec":{"securityContext":{},"volumes":[]}}');
  assert.equal(JSON.parse(v2.json()).status.phase, 'Running');
  // A member fewer or one more is a change too, even when every member left is shared.
  const fewer: Record<string, any> = structuredClone(v3.obj);
  delete fewer.spec.nodeName;
  const v4 = await store.update(key, fewer, v3.modRevision);
  assert.notEqual(v4.obj.spec, v3.obj.spec);
  assert.equal(v4.obj.spec.containers, v3.obj.spec.containers);
  assert.deepEqual(Object.keys(v4.obj.spec), ['containers']);
  const more: Record<string, any> = structuredClone(v4.obj);
  more.spec.nodeName = 'n1';
  const v5 = await store.update(key, more, v4.modRevision);
  assert.notEqual(v5.obj.spec, v4.obj.spec);
  assert.deepEqual(Object.keys(v5.obj.spec), ['containers', 'nodeName']);
  const again = await store.update(key, structuredClone(v5.obj), v5.modRevision);
  assert.equal(again.obj.spec, v5.obj.spec);
  assert.equal(again.obj.status, v5.obj.status);
});

test('a new object shares its parts equal to those of the object its resource parsed last, written or loaded', async (t) => {
  const file = dbFile(t);
  const spec = () => ({ containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }], tolerations: [{ key: 'a', operator: 'Exists' }] });
  const { store } = await openCache(t, file);
  const a = await store.create('/core/pods/default/a', pod('default', 'a', { spec: { ...spec(), nodeName: 'n1' } }));
  const b = await store.create('/core/pods/default/b', pod('default', 'b', { spec: { ...spec(), nodeName: 'n2' } }));
  // b's equal parts are a's frozen objects; what differs (name, node, the spec holding it) is b's own.
  assert.equal(b.obj.spec.containers, a.obj.spec.containers);
  assert.equal(b.obj.spec.tolerations, a.obj.spec.tolerations);
  assert.notEqual(b.obj.spec, a.obj.spec);
  assert.notEqual(b.obj.metadata, a.obj.metadata);
  assert.equal(b.obj.spec.nodeName, 'n2');
  assert.equal(JSON.parse(b.json()).metadata.name, 'b');
  assert.equal(JSON.parse(a.json()).spec.nodeName, 'n1');
  // Another resource's objects are not candidates: the first ConfigMap shares nothing with pod b.
  const cm = await store.create('/core/configmaps/default/a', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'default' }, spec: spec() });
  assert.notEqual(cm.obj.spec.tolerations, b.obj.spec.tolerations);
  assert.deepEqual(cm.obj.spec.tolerations, b.obj.spec.tolerations);
  // A restart loads the same sharing.
  await store.close();
  const reopened = await openCache(t, file);
  const la = reopened.store.get('/core/pods/default/a')!;
  const lb = reopened.store.get('/core/pods/default/b')!;
  assert.equal(lb.obj.spec.containers, la.obj.spec.containers);
  assert.ok(Object.isFrozen(lb.obj) && Object.isFrozen(lb.obj.spec.containers[0]));
  assert.deepEqual([la.obj.spec.nodeName, lb.obj.spec.nodeName], ['n1', 'n2']);
});

test('list pages in key order, filters before the limit, and spans resources', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  const writes = [];
  for (let i = 0; i < 25; i++) writes.push(store.create(`/core/pods/ns${i % 2}/p${String(i).padStart(2, '0')}`, pod(`ns${i % 2}`, `p${i}`, { i })));
  writes.push(store.create('/core/podtemplates/ns0/t', pod('ns0', 't')));
  writes.push(store.create('/apps/deployments/ns0/d', pod('ns0', 'd')));
  await Promise.all(writes);

  const all = store.list('/core/pods/');
  assert.equal(all.items.length, 25);
  assert.equal(all.revision, 27);
  const keys = all.items.map((o) => o.key);
  assert.deepEqual(keys, [...keys].sort());

  const p1 = store.list('/core/pods/', { limit: 10 });
  assert.equal(p1.items.length, 10);
  assert.equal(p1.lastKey, keys[9]);
  assert.equal(p1.remaining, 15);
  const p2 = store.list('/core/pods/', { limit: 10, afterKey: p1.lastKey });
  assert.deepEqual(p2.items.map((o) => o.key), keys.slice(10, 20));
  assert.equal(p2.remaining, 5);
  const p3 = store.list('/core/pods/', { limit: 10, afterKey: p2.lastKey });
  assert.equal(p3.items.length, 5);
  assert.equal(p3.lastKey, undefined);
  assert.equal(p3.remaining, undefined);
  const exact = store.list('/core/pods/', { limit: 25 });
  assert.equal(exact.lastKey, undefined, 'a limit that ends exactly at the last key does not cut');

  const ns1 = store.list('/core/pods/ns1/', { limit: 5 });
  assert.ok(ns1.items.every((o) => o.key.startsWith('/core/pods/ns1/')));
  assert.equal(ns1.remaining, 12 - 5);

  const odd = store.list('/core/pods/', { filter: (o) => o.obj.i % 3 === 0, limit: 4 });
  // ns0 (even i) sorts before ns1, so the first four matches are the even multiples of 3.
  assert.deepEqual(odd.items.map((o) => o.obj.i), [0, 6, 12, 18]);
  assert.equal(odd.lastKey, '/core/pods/ns0/p18');

  const core = store.list('/core/');
  assert.equal(core.items.length, 26);
  assert.equal(core.items.at(-1)!.key, '/core/podtemplates/ns0/t');
  assert.equal(store.list('/').items[0].key, '/apps/deployments/ns0/d');
  assert.equal(store.list('/core/pods/nope/').items.length, 0);

  // Membership changes rebuild the sorted keys; updates keep them.
  await store.delete(keys[0]);
  await store.create('/core/pods/ns0/a', pod('ns0', 'a'));
  assert.equal(store.list('/core/pods/', { limit: 1 }).items[0].key, '/core/pods/ns0/a');
});

test('watch replays from a revision, then streams live events with prevObject', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  const a = await store.create('/core/pods/ns1/a', pod('ns1', 'a'));        // 1
  await store.create('/core/pods/ns2/b', pod('ns2', 'b'));                  // 2
  const a2 = await store.update('/core/pods/ns1/a', pod('ns1', 'a', { v: 2 }), 1); // 3

  const events: WatchEvent[] = [];
  const w = store.watch('/core/pods/ns1/', 1, (e) => events.push(e));
  assert.deepEqual(events.map((e) => [e.type, e.revision]), [['MODIFIED', 3]]);
  assert.equal(events[0].prevObject, a);
  assert.equal(events[0].object, a2);

  await store.create('/core/pods/ns2/c', pod('ns2', 'c'));                  // 4: other namespace
  await store.delete('/core/pods/ns1/a');                                  // 5
  assert.deepEqual(events.map((e) => [e.type, e.revision]), [['MODIFIED', 3], ['DELETED', 5]]);
  assert.equal(events[1].prevObject, a2);
  assert.equal(events[1].object.obj.metadata.resourceVersion, '5');
  assert.equal(events[1].object.obj.v, 2);

  w.stop();
  await store.create('/core/pods/ns1/z', pod('ns1', 'z'));
  assert.equal(events.length, 2);

  const fromNow: WatchEvent[] = [];
  store.watch('/core/pods/', 0, (e) => fromNow.push(e));
  await store.create('/core/pods/ns1/y', pod('ns1', 'y'));
  assert.deepEqual(fromNow.map((e) => e.type), ['ADDED']);

  // A revision the cache has not reached yet: only events after it are delivered.
  const future: number[] = [];
  store.watch('/core/pods/', store.revision() + 1, (e) => future.push(e.revision));
  await store.create('/core/pods/ns1/f1', pod('ns1', 'f1'));
  const f2 = await store.create('/core/pods/ns1/f2', pod('ns1', 'f2'));
  assert.deepEqual(future, [f2.modRevision]);
  assert.throws(() => store.watch('/core/', 1, () => {}), /must name a resource/);
});

test('watch from a revision the ring no longer holds is CompactedError', async (t) => {
  const { store } = await openCache(t, dbFile(t), { ringSize: 3 });
  let s = await store.create('/core/configmaps/ns/a', { metadata: { name: 'a' } });
  for (let i = 0; i < 4; i++) s = await store.update(s.key, { metadata: { name: 'a' }, data: { i: String(i) } }, s.modRevision);
  await store.create('/apps/deployments/ns/d', { metadata: { name: 'd' } }); // another resource's ring
  // Revisions 1..5 on configmaps; the ring holds 3, 4, 5, so it is complete after 2.
  const err = (() => { try { store.watch('/core/configmaps/', 1, () => {}); } catch (e) { return e; } })();
  assert.ok(err instanceof CompactedError);
  assert.equal(err.requested, 1);
  assert.equal(err.compacted, 2);
  const replay: number[] = [];
  store.watch('/core/configmaps/', 2, (e) => replay.push(e.revision));
  assert.deepEqual(replay, [3, 4, 5]);
  const d: number[] = [];
  store.watch('/apps/deployments/', 1, (e) => d.push(e.revision));
  assert.deepEqual(d, [6]);
});

test('after a restart the cache reloads objects and rings replay recent history', async (t) => {
  const file = dbFile(t);
  const first = await openCache(t, file);
  const a = await first.store.create('/core/pods/ns/a', pod('ns', 'a'));     // 1
  await first.store.update(a.key, pod('ns', 'a', { v: 2 }), 1);              // 2
  await first.store.create('/core/pods/ns/b', pod('ns', 'b'));              // 3
  await first.store.delete('/core/pods/ns/b');                              // 4
  await first.store.create('/core/services/ns/s', { metadata: { name: 's' } }); // 5
  await first.store.close();

  const { store } = await openCache(t, file, { ringSize: 4 });
  assert.equal(store.revision(), 5);
  assert.deepEqual(store.list('/core/pods/').items.map((o) => [o.key, o.obj.metadata.resourceVersion]), [['/core/pods/ns/a', '2']]);
  // History was prefilled after revision 1 (5 - ringSize).
  const events: WatchEvent[] = [];
  store.watch('/core/pods/', 1, (e) => events.push(e));
  assert.deepEqual(events.map((e) => [e.type, e.revision]), [['MODIFIED', 2], ['ADDED', 3], ['DELETED', 4]]);
  assert.equal(events[0].prevObject?.obj.metadata.resourceVersion, '1');
  assert.equal(events[0].object, store.get('/core/pods/ns/a'), 'the newest state is shared with the live map');
  assert.equal(events[2].prevObject, events[1].object);
  assert.equal(events[2].object.obj.metadata.resourceVersion, '4');
  // A resource first written after the restart is complete from the prefill base too.
  assert.doesNotThrow(() => store.watch('/apps/deployments/', 1, () => {}));
  await store.close();

  const small = await openCache(t, file, { ringSize: 3 });
  assert.throws(() => small.store.watch('/core/pods/', 1, () => {}), CompactedError);
  const replay: number[] = [];
  small.store.watch('/core/pods/', 2, (e) => replay.push(e.revision));
  assert.deepEqual(replay, [3, 4]);
});

test('openStore puts the database under <data-dir>/server/db', async (t) => {
  const dir = tempDir(t);
  const { store, backend } = await openStore(dir);
  t.after(() => store.close());
  assert.equal(backend.file, `${dir}/server/db/state.db`);
  await store.create('/core/namespaces/default', { metadata: { name: 'default' } });
  assert.equal(store.get('/core/namespaces/default')?.obj.metadata.name, 'default');
});
