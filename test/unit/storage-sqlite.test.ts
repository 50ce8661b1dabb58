import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { open, stat } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { SqliteDriver } from '../../src/storage/sqlite.js';
import { eventually } from '../helpers/wait.js';
import { KeyExistsError, KeyNotFoundError, RevisionConflictError, type BackendEvent } from '../../src/storage/types.js';
import { dbFile, openBackend } from '../helpers/storage-temp.js';

const K = '/core/configmaps/default/a';

function rowCount(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM kv').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

test('create, update and delete are compare-and-swap on modRevision', async (t) => {
  const b = await openBackend(t, dbFile(t));
  const c = await b.create(K, '{"v":1}');
  assert.deepEqual(c, { key: K, value: '{"v":1}', createRevision: 1, modRevision: 1 });
  await assert.rejects(b.create(K, '{}'), KeyExistsError);

  const conflict = await b.update(K, '{"v":2}', 7).catch((e) => e);
  assert.ok(conflict instanceof RevisionConflictError);
  assert.deepEqual(conflict.current, c);

  const u = await b.update(K, '{"v":2}', 1);
  assert.deepEqual(u, { key: K, value: '{"v":2}', createRevision: 1, modRevision: 2 });
  assert.deepEqual(await b.get(K), u);

  await assert.rejects(b.delete(K, 1), RevisionConflictError);
  const d = await b.delete(K, 2);
  assert.deepEqual(d, { key: K, value: '{"v":2}', createRevision: 1, modRevision: 3 });
  assert.equal(await b.get(K), undefined);
  await assert.rejects(b.update(K, '{}', 3), KeyNotFoundError);
  await assert.rejects(b.delete(K), KeyNotFoundError);

  const again = await b.create(K, '{"v":3}');
  assert.equal(again.createRevision, 4);
  assert.equal(b.currentRevision(), 4);
});

test('ops on one key in the same batch see each other and fail individually', async (t) => {
  const b = await openBackend(t, dbFile(t));
  const before = b.stats.transactions;
  const results = await Promise.allSettled([
    b.create(K, '"a"'),
    b.create(K, '"dup"'),
    b.update(K, '"b"', 1),
    b.update(K, '"stale"', 1),
    b.delete(K, 2),
    b.update(K, '"gone"', 3),
    b.create(K, '"c"'),
  ]);
  assert.equal(b.stats.transactions - before, 1);
  const shape = results.map((r) => (r.status === 'fulfilled' ? r.value.modRevision : r.reason.constructor.name));
  assert.deepEqual(shape, [1, 'KeyExistsError', 2, 'RevisionConflictError', 3, 'KeyNotFoundError', 4]);
  assert.equal((await b.get(K))!.value, '"c"');
});

test('onCommit sees each batch in revision order before the writes resolve', async (t) => {
  const b = await openBackend(t, dbFile(t));
  const seen: BackendEvent[][] = [];
  let resolved = 0;
  const resolvedAtCommit: number[] = [];
  b.onCommit((events) => {
    resolvedAtCommit.push(resolved);
    seen.push(events);
  });
  const writes = ['/core/pods/ns/x', '/core/pods/ns/y', '/core/pods/ns/z'].map((k) => b.create(k, '{}').then(() => resolved++));
  await Promise.all(writes);
  assert.deepEqual(resolvedAtCommit, [0], 'the listener runs before any write resolves');
  assert.deepEqual(seen[0].map((e) => [e.type, e.kv.modRevision]), [['create', 1], ['create', 2], ['create', 3]]);

  await b.update('/core/pods/ns/x', '{"n":1}', 1);
  const upd = seen[1][0];
  assert.equal(upd.type, 'update');
  assert.deepEqual(upd.prev, { key: '/core/pods/ns/x', value: '{}', createRevision: 1, modRevision: 1 });
});

test('1,000 concurrent creates share a handful of transactions', async (t) => {
  const b = await openBackend(t, dbFile(t));
  await Promise.all(Array.from({ length: 1000 }, (_, i) => b.create(`/core/pods/ns/p${i}`, '{}')));
  assert.equal(b.stats.writes, 1000);
  assert.ok(b.stats.transactions <= 4, `${b.stats.transactions} transactions`);
  assert.equal(b.currentRevision(), 1000);
});

test('a write is acknowledged, and seen by watchers, only after its WAL is fsynced', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  await b.create(K, '{}');   // opens the WAL descriptor
  // Hold every fsync of a FileHandle until released (the driver fsyncs the WAL through one).
  const probe = await open(file, 'r');
  const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
  await probe.close();
  const real = proto.datasync;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let syncs = 0;
  proto.datasync = async function (this: unknown) { syncs++; await held; return real.call(this); };
  t.after(() => { proto.datasync = real; });
  const seen: number[] = [];
  b.onCommit((events) => seen.push(...events.map((e) => e.kv.modRevision)));
  let acked = false;
  const write = b.create('/core/configmaps/default/b', '{}').then((kv) => { acked = true; return kv; });
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(syncs, 1, 'the commit asked for an fsync');
  assert.equal(acked, false, 'acknowledged before its fsync finished');
  assert.deepEqual(seen, [], 'watchers saw the write before its fsync finished');
  release();
  assert.equal((await write).modRevision, 2);
  assert.deepEqual(seen, [2]);
  assert.equal(rowCount(file), 2);
});

test('a failing commit rejects its whole batch and leaves the revision where it was', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  await b.create(K, '{}');
  // Stand-in for an I/O error: the transaction throws half-way through the batch.
  const other = new Database(file);
  other.exec(`CREATE TRIGGER boom BEFORE INSERT ON kv WHEN NEW.name = '/x/y/boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
  const results = await Promise.allSettled([b.create('/x/y/ok', '{}'), b.create('/x/y/boom', '{}')]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(b.currentRevision(), 1);
  assert.equal(await b.get('/x/y/ok'), undefined);
  other.exec('DROP TRIGGER boom');
  other.close();
  assert.equal((await b.create('/x/y/ok', '{}')).modRevision, 2);
});

test('checkHealth probes with a real commit, answers from a fresh commit, and reports a failing one', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  await b.checkHealth(0);
  // Stand-in for a disk that refuses writes, aimed at the probe's row only.
  const other = new Database(file);
  t.after(() => other.close());
  other.exec(`CREATE TRIGGER no_probe BEFORE INSERT ON meta WHEN NEW.k = 'health-probe' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
  await assert.rejects(b.checkHealth(0), /disk on fire/);
  // A commit that just succeeded answers for the write side: no probe (which would fail) is made.
  await b.create(K, '{}');
  await b.checkHealth(60_000);
  await assert.rejects(b.checkHealth(0), /disk on fire/);
  // ... and a probe that just failed answers the next callers without another one.
  other.exec('DROP TRIGGER no_probe');
  await assert.rejects(b.checkHealth(60_000), /disk on fire/);
  await b.checkHealth(0);
  assert.equal(b.currentRevision(), 1, 'probes use no revision');
  await b.close();
  await assert.rejects(b.checkHealth(0), /not open/);
});

test('history returns events with their previous values', async (t) => {
  const b = await openBackend(t, dbFile(t));
  await b.create(K, '"1"');
  await b.update(K, '"2"', 1);
  await b.delete(K);
  await b.create(K, '"3"');
  const h = await b.history(1, 10);
  assert.deepEqual(h, [
    { type: 'update', kv: { key: K, value: '"2"', createRevision: 1, modRevision: 2 }, prev: { key: K, value: '"1"', createRevision: 1, modRevision: 1 } },
    { type: 'delete', kv: { key: K, value: '"2"', createRevision: 1, modRevision: 3 }, prev: { key: K, value: '"2"', createRevision: 1, modRevision: 2 } },
    { type: 'create', kv: { key: K, value: '"3"', createRevision: 4, modRevision: 4 } },
  ]);
  assert.equal((await b.history(0, 2)).length, 2);
});

test('compaction removes superseded rows and tombstones, keeps live keys and prev rows of newer events', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  const A = '/core/configmaps/ns/a';
  const B = '/core/configmaps/ns/b';
  const C = '/core/configmaps/ns/c';
  await b.create(A, '"a1"');         // 1
  await b.update(A, '"a2"', 1);      // 2
  await b.create(B, '"b1"');         // 3
  await b.create(C, '"c1"');         // 4
  await b.delete(C);                 // 5
  await b.update(A, '"a3"', 2);      // 6
  await b.compact(5);
  assert.equal(b.compactedRevision(), 5);
  // Rows 1, 4 and 5 go; row 2 stays because event 6 still needs it as its previous value.
  assert.equal(rowCount(file), 3);
  const h = await b.history(5, 10);
  assert.equal(h[0].prev?.value, '"a2"');
  await b.compact(6);
  assert.equal(rowCount(file), 2);
  const { kvs } = await b.listLatest('/core/configmaps/');
  assert.deepEqual(kvs.map((kv) => [kv.key, kv.value]), [[A, '"a3"'], [B, '"b1"']]);
});

test('compaction works through many rows in slices', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  let kv = await b.create(K, '0');
  for (let i = 1; i < 1300; i++) kv = await b.update(K, String(i), kv.modRevision);
  await b.compact(b.currentRevision());
  assert.equal(rowCount(file), 1);
  assert.equal(b.stats.compactedRows, 1299);
  assert.equal((await b.get(K))!.value, '1299');
});

test('a failed compaction keeps its progress and does not block the next one', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  let kv = await b.create(K, '0');
  for (let i = 1; i < 5; i++) kv = await b.update(K, String(i), kv.modRevision);
  const other = new Database(file);
  t.after(() => other.close());
  other.exec(`CREATE TRIGGER nodelete BEFORE DELETE ON kv BEGIN SELECT RAISE(ABORT, 'read-only media'); END`);
  await assert.rejects(b.compact(5), /read-only media/);
  assert.equal(b.compactedRevision(), 0);
  other.exec('DROP TRIGGER nodelete');
  await b.compact(5);
  assert.equal(b.compactedRevision(), 5);
  assert.equal(rowCount(file), 1);
});

test('the revision never goes back, across compaction and reopening', async (t) => {
  const file = dbFile(t);
  const b1 = await openBackend(t, file);
  await b1.create(K, '{}');
  await b1.delete(K);                // the newest row is a tombstone...
  await b1.compact(2);               // ...which compaction removes
  assert.equal(rowCount(file), 0);
  await b1.close();
  const b2 = await openBackend(t, file);
  assert.equal(b2.currentRevision(), 2);
  assert.equal(b2.compactedRevision(), 2);
  assert.equal((await b2.create(K, '{}')).modRevision, 3);
});

test('automatic compaction keeps the last N revisions', async (t) => {
  const b = await openBackend(t, dbFile(t));
  for (let i = 0; i < 20; i++) await b.create(`/core/pods/ns/p${i}`, '{}');
  b.startAutoCompact(5, 8);
  for (let i = 0; i < 200 && b.compactedRevision() < 12; i++) await new Promise((r) => setTimeout(r, 5));
  b.stopAutoCompact();
  assert.equal(b.compactedRevision(), 12);
  assert.ok((await b.dbSize()) > 0);
});

test('writes after close are refused', async (t) => {
  const b = await openBackend(t, dbFile(t));
  const pending = b.create(K, '{}');
  await b.close();
  assert.equal((await pending).modRevision, 1, 'close commits what was queued');
  await assert.rejects(b.create('/a/b/c', '{}'), /not open/);
});

test('with checkpoints in a worker, commits never checkpoint, the worker copies the WAL, and the WAL is reused', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file, { checkpointInWorker: true });
  const driver = b.driver as SqliteDriver;
  const value = JSON.stringify({ pad: 'x'.repeat(8000) });
  const walBytes = async () => (await stat(`${file}-wal`)).size;
  // Three rounds of 500 writes: each ends with a checkpoint, so the next round writes over the WAL's start.
  const sizes: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 500; i++) await b.create(`/core/configmaps/default/r${round}-${i}`, value);
    await driver.checkpointNow();
    sizes.push(await walBytes());
  }
  const autocheckpoint = () => (driver as unknown as { db: Database.Database }).db.pragma('wal_autocheckpoint', { simple: true });
  assert.equal(autocheckpoint(), 0, "the server's connection leaves checkpoints to the worker");
  const stats = driver.checkpoints!;
  assert.ok(stats.checkpoints >= 3, `the worker ran checkpoints (${stats.checkpoints})`);
  assert.ok(stats.framesCopied > 0, 'and copied frames into the database file');
  assert.ok(sizes[2]! < 1.5 * sizes[0]!, `the WAL was reused, not grown by every round (${sizes.join(', ')} bytes)`);

  // Writes in parallel with the worker's checkpoints (group commits while it copies): once they stop,
  // its checkpoints catch up, and the next write starts the WAL over.
  await Promise.all(Array.from({ length: 1000 }, (_, i) => b.create(`/core/configmaps/default/p-${i}`, value)));
  await driver.checkpointNow();
  await b.create('/core/configmaps/default/restart', value);
  await driver.checkpointNow();
  assert.ok(stats.walFrames < 100, `the WAL started over after the parallel writes (${stats.walFrames} frames in it)`);

  // A worker that dies hands checkpoints back to the commits, as SQLite does by default.
  await (driver as unknown as { checkpointer: { worker: Worker } }).checkpointer.worker.terminate();
  await eventually(async () => autocheckpoint() === 1000, 'SQLite checkpoints in the commits again');
  await b.create('/core/configmaps/default/after', value);
  await b.close();
  assert.equal(rowCount(file), 2502);
});
