import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCache, dbFile } from '../helpers/storage-temp.js';
import type { StoredObject, WatchEvent, WatchIndex } from '../../src/storage/types.js';

const byNode = (value: string): WatchIndex => ({ name: 'spec.nodeName', extract: (o) => o.spec?.nodeName ?? '', value });

test('indexed watchers get only events whose object (or previous object) carries their value', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  const seen: Record<string, string[]> = { a: [], b: [], unscheduled: [], all: [] };
  const note = (who: string) => (e: WatchEvent) => seen[who].push(`${e.type}:${e.object.obj.metadata.name}`);
  store.watch('/core/pods/', store.revision(), note('a'), byNode('a'));
  store.watch('/core/pods/', store.revision(), note('b'), byNode('b'));
  store.watch('/core/pods/', store.revision(), note('unscheduled'), byNode(''));
  store.watch('/core/pods/', store.revision(), note('all'));
  const p1 = await store.create('/core/pods/ns/p1', { metadata: { name: 'p1' }, spec: {} });
  const p1a = await store.update('/core/pods/ns/p1', { metadata: { name: 'p1' }, spec: { nodeName: 'a' } }, p1.modRevision);
  await store.create('/core/pods/ns/p2', { metadata: { name: 'p2' }, spec: { nodeName: 'b' } });
  await store.delete('/core/pods/ns/p1', p1a.modRevision);
  assert.deepEqual(seen.unscheduled, ['ADDED:p1', 'MODIFIED:p1'], 'the scheduler sees a pod leave the unscheduled set');
  assert.deepEqual(seen.a, ['MODIFIED:p1', 'DELETED:p1']);
  assert.deepEqual(seen.b, ['ADDED:p2']);
  assert.equal(seen.all.length, 4);
});

test('indexed replay from the ring filters by the value too', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  await store.create('/core/pods/ns/first', { metadata: { name: 'first' }, spec: { nodeName: 'b' } });
  const start = store.revision();   // (0 would mean "from now")
  await store.create('/core/pods/ns/x', { metadata: { name: 'x' }, spec: { nodeName: 'a' } });
  await store.create('/core/pods/ns/y', { metadata: { name: 'y' }, spec: { nodeName: 'b' } });
  const got: string[] = [];
  const w = store.watch('/core/pods/', start, (e) => got.push(e.object.obj.metadata.name), byNode('b'));
  assert.deepEqual(got, ['y']);
  w.stop();
  await store.create('/core/pods/ns/z', { metadata: { name: 'z' }, spec: { nodeName: 'b' } });
  assert.deepEqual(got, ['y'], 'a stopped watcher gets nothing');
});

test('an indexed list equals the filtered scan through creates, binds, moves and deletes, with paging', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  const nodeOf = (o: { spec?: { nodeName?: string } }) => o.spec?.nodeName ?? '';
  const names = (items: StoredObject[]) => items.map((o) => String(o.obj.metadata.name));
  const scan = (prefix: string, node: string) => names(store.list(prefix, { filter: (o) => nodeOf(o.obj) === node }).items);
  const indexed = (prefix: string, node: string) => names(store.list(prefix, { filter: (o) => nodeOf(o.obj) === node, index: byNode(node) }).items);
  const same = (when: string) => {
    for (const prefix of ['/core/pods/', '/core/pods/ns1/', '/core/pods/ns2/']) {
      for (const node of ['', 'a', 'b', 'c']) assert.deepEqual(indexed(prefix, node), scan(prefix, node), `${when}: ${prefix} on "${node}"`);
    }
  };
  // Objects that exist before the first indexed list, and changes after it.
  const revs = new Map<string, number>();
  for (let i = 0; i < 12; i++) {
    const key = `/core/pods/ns${1 + (i % 2)}/p${i}`;
    revs.set(key, (await store.create(key, { metadata: { name: `p${i}` }, spec: i % 3 ? { nodeName: i % 2 ? 'a' : 'b' } : {} })).modRevision);
  }
  same('before any change');
  for (const [key, rev] of [...revs].slice(0, 6)) {
    const obj = store.get(key)!.obj as { metadata: { name: string }; spec: { nodeName?: string } };
    revs.set(key, (await store.update(key, { metadata: obj.metadata, spec: { nodeName: obj.spec.nodeName === 'a' ? 'c' : 'a' } }, rev)).modRevision);
  }
  same('after binds and moves');
  for (const [key, rev] of [...revs].filter((_, i) => i % 4 === 1)) await store.delete(key, rev);
  same('after deletes');
  // Paging: limit and afterKey walk the node's pods in key order, as the scan does.
  const all = store.list('/core/pods/', { index: byNode('a'), filter: (o) => nodeOf(o.obj) === 'a' }).items.map((o) => o.key);
  assert.ok(all.length >= 3, `enough pods on a to page through (${all.length})`);
  const first = store.list('/core/pods/', { index: byNode('a'), filter: (o) => nodeOf(o.obj) === 'a', limit: 2 });
  assert.deepEqual(first.items.map((o) => o.key), all.slice(0, 2));
  assert.equal(first.lastKey, all[1]);
  const rest = store.list('/core/pods/', { index: byNode('a'), filter: (o) => nodeOf(o.obj) === 'a', afterKey: first.lastKey });
  assert.deepEqual(rest.items.map((o) => o.key), all.slice(2));
});
