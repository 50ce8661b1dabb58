// The storage conformance suite: what every driver under the generic log layer must do, run once per
// backend (SQLite in test/unit/storage-conformance.test.ts, PostgreSQL against a real server in
// test/e2e/storage-conformance-postgres.test.ts). A backend factory hands out a fresh, empty
// database per test (`fresh`) and opens backends on it (`open`; several on one database when the
// backend allows several servers).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { LogBackendOptions, LogStats } from '../../src/storage/log.js';
import { CacheStore } from '../../src/storage/cache.js';
import {
  CompactedError, KeyExistsError, KeyNotFoundError, RevisionConflictError, type Backend, type BackendEvent, type KeyValue, type WatchEvent,
} from '../../src/storage/types.js';

/** What the suite drives: the Backend contract plus the commit counters. */
export type ConformanceStore = Backend & { readonly stats: LogStats };
import { startEventTtl } from '../../src/storage/event-ttl.js';
import { eventually } from './wait.js';

export interface ConformanceBackend {
  name: string;
  /** A new empty database; returns what `open` needs to reach it. */
  fresh(t: TestContext): Promise<string>;
  /** A started backend on `where`, closed when the test ends. */
  open(t: TestContext, where: string, opts?: LogBackendOptions): Promise<ConformanceStore>;
  /** Several servers may share one database (their changes reach each other). */
  shared: boolean;
  /**
   * The datastore keeps its own revisions and history (etcd): a fresh database starts at `base(where)`
   * rather than 0, etcd batches writes itself (no commit counts to check), and compaction keeps no
   * history at or below the compacted revision. Unset: skiff's log layer (dense revisions from 0).
   */
  native?: { base(where: string): Promise<number> };
}

const K = '/core/configmaps/default/a';

async function cacheOn(t: TestContext, backend: ConformanceStore, ringSize?: number): Promise<CacheStore> {
  const store = new CacheStore(backend, { ringSize });
  t.after(() => store.close());
  await store.start();
  return store;
}

export function storageConformance(b: ConformanceBackend): void {
  // `base`: revisions in a fresh database start after it (0 for skiff's log layer).
  let base = 0;
  const fresh = async (t: TestContext) => {
    const where = await b.fresh(t);
    base = b.native ? await b.native.base(where) : 0;
    return where;
  };
  const open = async (t: TestContext, opts?: LogBackendOptions) => b.open(t, await fresh(t), opts);
  const r = (n: number) => base + n;

  test(`${b.name}: create, update and delete are compare-and-swap on modRevision`, async (t) => {
    const s = await open(t);
    const c = await s.create(K, '{"v":1}');
    assert.deepEqual(c, { key: K, value: '{"v":1}', createRevision: r(1), modRevision: r(1) });
    await assert.rejects(s.create(K, '{}'), KeyExistsError);
    const conflict = await s.update(K, '{"v":2}', r(7)).catch((e) => e);
    assert.ok(conflict instanceof RevisionConflictError);
    assert.deepEqual(conflict.current, c);
    const u = await s.update(K, '{"v":2}', r(1));
    assert.deepEqual(u, { key: K, value: '{"v":2}', createRevision: r(1), modRevision: r(2) });
    assert.deepEqual(await s.get(K), u);
    await assert.rejects(s.delete(K, r(1)), RevisionConflictError);
    const d = await s.delete(K, r(2));
    assert.deepEqual(d, { key: K, value: '{"v":2}', createRevision: r(1), modRevision: r(3) });
    assert.equal(await s.get(K), undefined);
    await assert.rejects(s.update(K, '{}', r(3)), KeyNotFoundError);
    await assert.rejects(s.delete(K), KeyNotFoundError);
    const again = await s.create(K, '{"v":3}');
    assert.deepEqual([again.createRevision, again.modRevision], [r(4), r(4)]);
    assert.equal(s.currentRevision(), r(4));
  });

  test(`${b.name}: ops on one key in one batch see each other and fail alone`, async (t) => {
    const s = await open(t);
    const before = s.stats.transactions;
    const results = await Promise.allSettled([
      s.create(K, '1'), s.create(K, '2'), s.update(K, '3', r(1)), s.update(K, '4', r(1)), s.delete(K, r(2)),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    if (!b.native) assert.equal(s.stats.transactions - before, 1);
    assert.equal(await s.get(K), undefined);
  });

  test(`${b.name}: 1,000 concurrent writes share few commits and reach listeners in revision order`, async (t) => {
    const s = await open(t);
    const seen: number[] = [];
    s.onCommit((events) => { for (const e of events) seen.push(e.kv.modRevision); });
    const kvs = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.create(`/core/pods/ns/p${i}`, `{"i":${i}}`)));
    assert.equal(new Set(kvs.map((kv) => kv.modRevision)).size, 1000);
    assert.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => r(i + 1)));
    if (!b.native) assert.ok(s.stats.transactions <= 100, `${s.stats.transactions} commits for 1,000 writes`);
  });

  test(`${b.name}: keys are listed in byte order under a prefix, whatever the locale`, async (t) => {
    const s = await open(t);
    const names = ['a', 'B', 'a-b', 'a.b', 'a_b', 'ab', 'Z', 'z', '_x', '~', 'a/b'];
    for (const n of names) await s.create(`/core/configmaps/ns/${n}`, '{}');
    await s.create('/core/configmaps/nt/x', '{}');
    await s.create('/core/configmapz/ns/x', '{}');
    const { kvs, revision } = await s.listLatest('/core/configmaps/ns/');
    assert.deepEqual(kvs.map((kv) => kv.key.slice('/core/configmaps/ns/'.length)), [...names].sort());
    assert.equal(revision, s.currentRevision());
    await s.delete('/core/configmaps/ns/a');
    assert.equal((await s.listLatest('/core/configmaps/ns/')).kvs.length, names.length - 1);
    // One at a time, as the cache loads: the same keys, values, revisions and order.
    const handed: KeyValue[] = [];
    const eachRevision = await s.eachLatest('/core/configmaps/ns/', (kv) => handed.push(kv));
    const listed = await s.listLatest('/core/configmaps/ns/');
    assert.deepEqual(handed, listed.kvs);
    assert.equal(eachRevision, listed.revision);
    assert.equal(await s.eachLatest('/core/nothing/', () => assert.fail('nothing to hand')), listed.revision);
  });

  test(`${b.name}: history carries previous values; compaction removes superseded rows and tombstones`, async (t) => {
    const s = await open(t);
    let kv = await s.create(K, '"0"');
    for (let i = 1; i < 5; i++) kv = await s.update(K, `"${i}"`, kv.modRevision);   // revisions 1..5
    await s.create('/core/configmaps/default/b', '"b"');                            // 6
    await s.delete('/core/configmaps/default/b');                                   // 7
    const h = await s.history(r(1), 10);
    assert.deepEqual(h.map((e: BackendEvent) => [e.type, e.kv.modRevision, e.prev?.value]), [
      ['update', r(2), '"0"'], ['update', r(3), '"1"'], ['update', r(4), '"2"'], ['update', r(5), '"3"'],
      ['create', r(6), undefined], ['delete', r(7), '"b"'],
    ]);
    await s.compact(r(7));
    assert.equal(s.compactedRevision(), r(7));
    // The log layer keeps each key's latest row; etcd keeps no history at or below the mark.
    assert.deepEqual((await s.history(0, 10)).map((e) => e.kv.modRevision), b.native ? [] : [5]);
    assert.deepEqual((await s.listLatest('/core/configmaps/')).kvs.map((x) => x.value), ['"4"']);
    assert.equal((await s.create('/core/configmaps/default/b', '"b2"')).modRevision, r(8));
    assert.ok((await s.dbSize()) > 0);
  });

  test(`${b.name}: the revision never goes back across compaction and reopening`, async (t) => {
    const where = await fresh(t);
    const s1 = await b.open(t, where);
    await s1.create(K, '{}');
    await s1.delete(K);
    await s1.compact(r(2));
    await s1.close();
    const s2 = await b.open(t, where);
    assert.equal(s2.currentRevision(), r(2));
    assert.equal(s2.compactedRevision(), r(2));
    assert.equal((await s2.create(K, '{}')).modRevision, r(3));
  });

  test(`${b.name}: health probe commits without using a revision`, async (t) => {
    const s = await open(t);
    await s.checkHealth(0);
    assert.equal(s.currentRevision(), r(0));
    await s.close();
    await assert.rejects(s.checkHealth(0), /not open/);
    await assert.rejects(s.create(K, '{}'), /not open/);
  });

  test(`${b.name}: the watch cache serves lists, watches and pages pinned to a revision`, async (t) => {
    const s = await open(t);
    const store = await cacheOn(t, s);
    for (let i = 0; i < 6; i++) await store.create(`/core/pods/ns/p${i}`, { metadata: { name: `p${i}` }, v: 0 });
    const events: WatchEvent[] = [];
    store.watch('/core/pods/', store.revision(), (e) => events.push(e));
    const page1 = store.list('/core/pods/', { limit: 2 });
    assert.deepEqual(page1.items.map((o) => o.obj.metadata.name), ['p0', 'p1']);
    // Changes between pages: a later page still shows the first page's state.
    await store.delete('/core/pods/ns/p2');
    const p3 = store.get('/core/pods/ns/p3')!;
    await store.update('/core/pods/ns/p3', { metadata: { name: 'p3' }, v: 1 }, p3.modRevision);
    await store.create('/core/pods/ns/p25', { metadata: { name: 'p25' } });
    const page2 = store.list('/core/pods/', { limit: 2, afterKey: page1.lastKey, atRevision: page1.revision });
    assert.deepEqual(page2.items.map((o) => [o.obj.metadata.name, o.obj.v]), [['p2', 0], ['p3', 0]]);
    assert.equal(page2.revision, page1.revision);
    assert.equal(page2.remaining, 2);
    const page3 = store.list('/core/pods/', { limit: 2, afterKey: page2.lastKey, atRevision: page1.revision });
    assert.deepEqual(page3.items.map((o) => o.obj.metadata.name), ['p4', 'p5']);
    assert.equal(page3.lastKey, undefined);
    assert.deepEqual(events.map((e) => e.type), ['DELETED', 'MODIFIED', 'ADDED']);
    // A revision the ring no longer reaches is 410.
    const small = await cacheOn(t, await b.open(t, await fresh(t)), 2);
    for (let i = 0; i < 5; i++) await small.create(`/core/pods/ns/q${i}`, { metadata: { name: `q${i}` } });
    assert.throws(() => small.list('/core/pods/', { limit: 1, atRevision: r(1) }), CompactedError);
  });

  test(`${b.name}: expired Events are deleted through the store, fresh ones kept`, async (t) => {
    const store = await cacheOn(t, await open(t));
    const now = Date.parse('2026-01-01T12:00:00Z');
    const at = (min: number) => new Date(now - min * 60_000).toISOString();
    await store.create('/core/events/ns/old', { metadata: { name: 'old', creationTimestamp: at(120) }, lastTimestamp: at(90) });
    await store.create('/core/events/ns/renewed', { metadata: { name: 'renewed', creationTimestamp: at(120) }, lastTimestamp: at(10) });
    await store.create('/events.k8s.io/events/ns/series', { metadata: { name: 'series', creationTimestamp: at(300) }, eventTime: at(300), series: { count: 3, lastObservedTime: at(5) } });
    await store.create('/events.k8s.io/events/ns/gone', { metadata: { name: 'gone', creationTimestamp: at(61) }, eventTime: at(61) });
    const deleted: string[] = [];
    store.watch('/core/events/', store.revision(), (e) => e.type === 'DELETED' && deleted.push(e.object.key));
    const ttl = startEventTtl(store, { ttlMs: 3600_000, now: () => now, intervalMs: 3600_000 });
    t.after(() => ttl.stop());
    assert.equal(await ttl.sweep(), 2);
    assert.deepEqual(store.list('/core/events/').items.map((o) => o.obj.metadata.name), ['renewed']);
    assert.deepEqual(store.list('/events.k8s.io/events/').items.map((o) => o.obj.metadata.name), ['series']);
    assert.deepEqual(deleted, ['/core/events/ns/old']);
  });

  if (!b.shared) return;

  test(`${b.name}: two servers on one database: each sees the other's writes in order, CAS holds across them`, async (t) => {
    const where = await fresh(t);
    const a = await cacheOn(t, await b.open(t, where));
    const bStore = await cacheOn(t, await b.open(t, where));
    const onB: number[] = [];
    let seenOnB: (() => void) | undefined;
    const seen = new Promise<void>((resolve) => { seenOnB = resolve; });
    bStore.watch('/core/configmaps/', 0, (e) => { onB.push(e.revision); seenOnB?.(); });
    const t0 = performance.now();
    const made = await a.create(K, { metadata: { name: 'a' }, v: 1 });
    const t1 = performance.now();
    await Promise.race([seen, new Promise((_, reject) => setTimeout(() => reject(new Error('server B never saw A\'s write')), 20_000))]);
    t.diagnostic(`write acknowledged on A after ${(t1 - t0).toFixed(1)} ms, seen by a watch on B ${(performance.now() - t1).toFixed(1)} ms later`);
    assert.equal(bStore.get(K)?.modRevision, made.modRevision);
    // Both update the same revision: exactly one wins, the other gets a conflict.
    const results = await Promise.allSettled([
      a.update(K, { metadata: { name: 'a' }, v: 2 }, made.modRevision),
      bStore.update(K, { metadata: { name: 'a' }, v: 3 }, made.modRevision),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(failed.reason instanceof RevisionConflictError, String(failed.reason));
    // Interleaved writers: both caches end with every key, and B's watch saw every revision in order.
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : bStore).create(`/core/configmaps/default/k${i}`, { metadata: { name: `k${i}` } })));
    const rev = Math.max(a.revision(), bStore.revision());
    await eventually(async () => a.revision() === rev && bStore.revision() === rev, 'both caches at the same revision', 20_000);
    assert.equal(a.list('/core/configmaps/').items.length, 51);
    assert.equal(bStore.list('/core/configmaps/').items.length, 51);
    assert.deepEqual(onB, [...onB].sort((x, y) => x - y));
    assert.equal(onB.length, rev - base);
  });
}
