// runController: failures retried with backoff, success forgets, requeueAfter, one worker per key
// while several keys run in parallel, a stop() that waits for reconciles in flight, workers that
// start only once the informers they read have synced, and enqueueAll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/client/workqueue.js';
import { ExponentialFailureRateLimiter } from '../../src/client/rate-limit.js';
import { enqueueAll, enqueueOnChange, runController } from '../../src/client/controller.js';
import { Informer, keyOf, splitKey } from '../../src/client/informer.js';
import { Resources, isNotFound } from '../../src/client/types.js';
import type { KObject } from '../../src/api/object.js';
import { startLocalApi } from '../helpers/local-api.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(2);
  }
}

test('a failing key is retried with growing delays until it succeeds, then forgotten', async (t) => {
  const queue = new WorkQueue<string>(new ExponentialFailureRateLimiter<string>(10, 1000));
  const times: number[] = [];
  let failuresLeft = 3;
  const c = runController({
    name: 'test-retry', queue,
    async reconcile(key) {
      assert.equal(key, 'ns/a');
      times.push(Date.now());
      if (failuresLeft-- > 0) throw new Error('not yet');
    },
  });
  t.after(() => c.stop());
  queue.add('ns/a');
  await until(() => times.length === 4);
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  // 10, 20, 40 ms of backoff: timers may fire late, never early, so only lower bounds are checked
  // (a busy machine once made the first gap 105 ms). That the third is at least 40 ms shows the growth.
  assert.ok(gaps[0] >= 9 && gaps[1] >= 19 && gaps[2] >= 39, `gaps ${gaps}`);
  await until(() => queue.numRequeues('ns/a') === 0);
  await sleep(60);
  assert.equal(times.length, 4, 'no retry after success');
});

test('requeueAfterMs reconciles a key again after success', async (t) => {
  const queue = new WorkQueue<string>();
  let calls = 0;
  const c = runController({
    name: 'test-requeue', queue,
    async reconcile() { calls++; return calls < 3 ? { requeueAfterMs: 5 } : undefined; },
  });
  t.after(() => c.stop());
  queue.add('k');
  await until(() => calls === 3);
  await sleep(30);
  assert.equal(calls, 3);
});

test('workers run different keys in parallel but never one key twice at once', async (t) => {
  const queue = new WorkQueue<string>();
  const active = new Set<string>();
  let maxParallel = 0;
  let overlapSameKey = false;
  let done = 0;
  const c = runController({
    name: 'test-workers', queue, workers: 3,
    async reconcile(key) {
      if (active.has(key)) overlapSameKey = true;
      active.add(key);
      maxParallel = Math.max(maxParallel, active.size);
      await sleep(15);
      active.delete(key);
      done++;
    },
  });
  t.after(() => c.stop());
  for (const k of ['a', 'b', 'c', 'd']) queue.add(k);
  await sleep(5);
  queue.add('a');   // changed while being reconciled: once more, after
  queue.add('a');
  await until(() => done === 5);
  await sleep(40);
  assert.equal(done, 5);
  assert.equal(maxParallel, 3);
  assert.equal(overlapSameKey, false);
});

test('stop() waits for the reconcile in flight and nothing runs after it', async () => {
  const queue = new WorkQueue<string>();
  let finished = false;
  let calls = 0;
  const c = runController({
    name: 'test-stop', queue,
    async reconcile() { calls++; await sleep(30); finished = true; throw new Error('fails, so it would be retried'); },
  });
  queue.add('k');
  await until(() => calls === 1);
  await c.stop();
  assert.equal(finished, true);
  queue.add('k');
  await sleep(40);
  assert.equal(calls, 1);
});

/** A cache that syncs when the test says so (or never, when stopped first). */
function fakeInformer() {
  let resolve!: () => void, reject!: (e: Error) => void;
  const synced = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  synced.catch(() => undefined);
  return { waitForSync: () => synced, sync: () => resolve(), stop: () => reject(new Error('stopped before it synced')) };
}

test('workers start only once every informer has synced; keys queued meanwhile wait', async (t) => {
  const queue = new WorkQueue<string>();
  const a = fakeInformer(), b = fakeInformer();
  const seen: string[] = [];
  const c = runController({ name: 'test-sync', queue, informers: [a, b], async reconcile(key) { seen.push(key); } });
  t.after(() => c.stop());
  assert.equal(c.name, 'test-sync');
  queue.add('x');
  queue.add('y');
  a.sync();
  await sleep(20);
  assert.deepEqual(seen, [], 'nothing reconciled while one cache is still filling');
  b.sync();
  await until(() => seen.length === 2);
  assert.deepEqual(seen.sort(), ['x', 'y']);
});

test('real informers: a reconcile never reads a cache that has not listed yet', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.configMaps, 'default', { metadata: { name: 'trigger' } });
  for (let i = 0; i < 20; i++) await client.create(Resources.secrets, 'default', { metadata: { name: `s-${i}` } });
  const maps = new Informer({ client, resource: Resources.configMaps, namespace: 'default' });
  const secrets = new Informer({ client, resource: Resources.secrets, namespace: 'default' });
  const queue = new WorkQueue<string>();
  maps.addHandlers({ onAdd: (o) => queue.add(keyOf(o)) });
  const secretsSeen: number[] = [];
  const c = runController({
    name: 'test-two-caches', queue, informers: [maps, secrets],
    async reconcile() { secretsSeen.push(secrets.list().length); },
  });
  t.after(async () => { await c.stop(); await maps.stop(); await secrets.stop(); });
  maps.start();
  await maps.waitForSync(2000);
  await sleep(30);
  assert.deepEqual(secretsSeen, [], 'the key waits while the other cache has not listed');
  secrets.start();
  await until(() => secretsSeen.length === 1);
  assert.deepEqual(secretsSeen, [20]);
});

test('stop() before the informers synced: no worker ever starts, and stop() does not wait for the sync', async () => {
  const queue = new WorkQueue<string>();
  const inf = fakeInformer();
  let calls = 0;
  const c = runController({ name: 'test-stop-unsynced', queue, informers: [inf], async reconcile() { calls++; } });
  queue.add('k');
  await c.stop();
  inf.sync();
  await sleep(20);
  assert.equal(calls, 0);
  // An informer stopped before syncing (the manager's teardown order) is no error either.
  const inf2 = fakeInformer();
  const c2 = runController({ name: 'test-stop-unsynced-2', queue: new WorkQueue<string>(), informers: [inf2], async reconcile() { calls++; } });
  inf2.stop();
  await c2.stop();
  assert.equal(calls, 0);
});

test('enqueueAll queues every cached key (or those the filter keeps); enqueueOnChange queues what changed', () => {
  const added: string[] = [];
  const objs = [{ metadata: { namespace: 'a', name: 'x' } }, { metadata: { name: 'y' } }] as KObject[];
  enqueueAll({ add: (k) => added.push(k) }, { list: () => objs });
  assert.deepEqual(added, ['a/x', 'y']);
  added.length = 0;
  enqueueAll({ add: (k) => added.push(k) }, { list: () => objs }, (o) => !o.metadata.namespace);
  assert.deepEqual(added, ['y']);
  added.length = 0;
  const h = enqueueOnChange({ add: (k) => added.push(k) });
  h.onAdd!(objs[0]!);
  h.onUpdate!(objs[1]!, objs[0]!);
  h.onDelete!(objs[1]!);
  assert.deepEqual(added, ['a/x', 'a/x', 'y']);
});

test('wired together: informer → queue → reconcile converges and repairs (a toy mirror controller)', async (t) => {
  const { client } = await startLocalApi(t);
  const informer = new Informer({ client, resource: Resources.configMaps, namespace: 'default' });
  const queue = new WorkQueue<string>();
  // Every ConfigMap labelled mirror=yes has a copy named <name>-mirror with the same data.
  const enqueue = (o: KObject) => {
    const name = o.metadata.name!;
    queue.add(keyOf({ metadata: { namespace: o.metadata.namespace, name: name.endsWith('-mirror') ? name.slice(0, -7) : name } }));
  };
  informer.addHandlers({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n), onDelete: enqueue });
  const c = runController({
    name: 'mirror', queue, workers: 2,
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const source = informer.getByName(namespace, name) as any;
      const mirror = informer.getByName(namespace, `${name}-mirror`) as any;
      if (!source || source.metadata.labels?.mirror !== 'yes') {
        if (mirror) await client.delete(Resources.configMaps, namespace, `${name}-mirror`).catch((e) => { if (!isNotFound(e)) throw e; });
        return;
      }
      if (!mirror) {
        await client.create(Resources.configMaps, namespace, { metadata: { name: `${name}-mirror` }, data: source.data });
      } else if (JSON.stringify(mirror.data) !== JSON.stringify(source.data)) {
        const next = structuredClone(mirror);
        next.data = source.data;
        await client.update(Resources.configMaps, namespace, next);   // a 409 from a stale cache is retried
      }
    },
  });
  t.after(async () => { await c.stop(); await informer.stop(); });
  informer.start();
  await informer.waitForSync(2000);

  await client.create(Resources.configMaps, 'default', { metadata: { name: 'a', labels: { mirror: 'yes' } }, data: { v: '1' } });
  await until(() => (informer.getByName('default', 'a-mirror') as any)?.data?.v === '1');
  await client.patch(Resources.configMaps, 'default', 'a', 'merge', { data: { v: '2' } });
  await until(() => (informer.getByName('default', 'a-mirror') as any)?.data?.v === '2');
  await client.delete(Resources.configMaps, 'default', 'a-mirror');            // repaired
  await until(() => (informer.getByName('default', 'a-mirror') as any)?.data?.v === '2');
  await client.patch(Resources.configMaps, 'default', 'a', 'merge', { metadata: { labels: { mirror: 'no' } } });
  await until(() => informer.getByName('default', 'a-mirror') === undefined);
});
