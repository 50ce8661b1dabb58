import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCache, dbFile } from '../helpers/storage-temp.js';
import type { WatchEvent, WatchIndex } from '../../src/storage/types.js';

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
