// Snapshots of the shared datastores against real ones (Debian's etcd, PostgreSQL and MariaDB,
// each started by the test): a dump at one revision while writes go on, restored into the same
// backend in place (the difference written as new revisions) and into an empty database (the
// snapshot's revisions kept); for etcd also etcd's own snapshot file, which etcdctl accepts; and the
// continuous backup stream fed by each backend's change stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { backendFor, type DatastoreBackend } from '../../src/storage/index.js';
import { restoreSnapshot, saveSnapshot, type DatastoreRef } from '../../src/server/snapshot.js';
import { BackupStream } from '../../src/server/backup-stream.js';
import { streamState } from '../../src/server/backup-stream-restore.js';
import { startEtcd, startMariadb, startPostgres } from '../helpers/datastores.js';
import { tempDir } from '../helpers/storage-temp.js';
import { eventually } from '../helpers/wait.js';

const KEY = (i: number) => `/core/configmaps/default/cm-${String(i).padStart(3, '0')}`;

async function opened(t: TestContext, dataDir: string, ref: DatastoreRef): Promise<DatastoreBackend> {
  const b = await backendFor(dataDir, ref.endpoint, { tls: ref.tls });
  await b.start();
  t.after(() => b.close());
  return b;
}

const live = async (b: DatastoreBackend) => (await b.listLatest('/core/')).kvs.map((kv) => [kv.key, kv.value]);

/** The same story for every backend; `fresh` names an empty database of the same kind. */
async function story(t: TestContext, ref: DatastoreRef, fresh?: DatastoreRef): Promise<void> {
  const dataDir = tempDir(t);
  mkdirSync(join(dataDir, 'server'), { recursive: true });
  const b = await opened(t, dataDir, ref);
  const stream = new BackupStream({ dir: join(dataDir, 'stream'), dataDir, node: 'n1', backend: b, backendName: 'x', intervalMs: 50, log: () => {} });
  await stream.start();
  for (let i = 0; i < 40; i++) await b.create(KEY(i), JSON.stringify({ i }));
  // A snapshot while writes go on is one consistent state: either before or after each write.
  const writes = Promise.all(Array.from({ length: 40 }, (_, i) => b.create(KEY(100 + i), '{}')));
  const snap = await saveSnapshot(dataDir, { datastore: ref, node: 'n1' });
  await writes;
  assert.equal(snap.file, 'dump.jsonl');
  const atSnapshot = (await import('../../src/server/snapshot-dump.js')).readDump(join(snap.path, snap.file));
  const dump = await atSnapshot;
  assert.equal(dump.revision, snap.revision);
  const late = dump.kvs.filter((kv) => kv.key >= KEY(100));
  assert.ok(late.every((kv) => kv.modRevision <= dump.revision), 'nothing newer than the dump\'s revision');

  // Later changes, then a restore in place: the dump's state comes back as new revisions.
  const k0 = (await b.get(KEY(0)))!;
  await b.update(KEY(0), '{"changed":true}', k0.modRevision);
  await b.delete(KEY(1));
  await b.create('/core/configmaps/default/after', '{}');
  const before = b.currentRevision();
  const r = await restoreSnapshot(dataDir, snap.path, ref);
  assert.equal(r.mode, 'diff');
  // The three changes above, and a delete for each concurrent write the dump came before (a dump
  // taken early holds none of them: each is then a key the dump's state does not have).
  assert.equal(r.writes, 3 + (40 - late.length));
  assert.deepEqual(await live(b), dump.kvs.map((kv) => [kv.key, kv.value]));
  // Written by another connection (as another server would): this one sees it by notification or poll.
  await eventually(async () => b.currentRevision() >= before + 3, 'the restore\'s revisions to reach the change stream', 20_000);

  // The stream saw every change, whichever way it was made.
  await stream.stop();
  assert.deepEqual((await streamState(join(dataDir, 'stream'))).kvs.map((kv) => [kv.key, kv.value]), await live(b));

  if (fresh) {
    const r2 = await restoreSnapshot(dataDir, snap.path, fresh);
    assert.equal(r2.mode, 'load');
    const f = await opened(t, dataDir, fresh);
    assert.deepEqual((await f.listLatest('/core/')).kvs, dump.kvs, 'an empty database gets the snapshot\'s revisions');
    assert.equal(f.currentRevision(), dump.revision);
  }
}

test('etcd: dump, in-place restore, etcd\'s own snapshot file, stream', async (t) => {
  const etcd = await startEtcd(t);
  await story(t, { endpoint: etcd.url });
  const dataDir = tempDir(t);
  mkdirSync(join(dataDir, 'server'), { recursive: true });
  const snap = await saveSnapshot(dataDir, { datastore: { endpoint: etcd.url }, node: 'n1', compress: true });
  assert.equal(snap.etcdDb, 'etcd.db.gz');
  const plain = await saveSnapshot(dataDir, { datastore: { endpoint: etcd.url }, node: 'n1', name: 'plain' });
  const status = execFileSync('/usr/bin/etcdctl', ['snapshot', 'status', join(plain.path, 'etcd.db'), '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
  assert.ok(JSON.parse(status).revision >= plain.revision!, 'etcdctl reads it');
  assert.ok(existsSync(join(snap.path, 'dump.jsonl.gz')));
});

test('postgres: dump, in-place restore, load into an empty database, stream', async (t) => {
  const pg = await startPostgres(t);
  await story(t, { endpoint: pg.url('skiff') }, { endpoint: pg.url('skiff_restored') });
});

test('mariadb: dump, in-place restore, load into an empty database, stream', async (t) => {
  const my = await startMariadb(t);
  await story(t, { endpoint: my.url('skiff') }, { endpoint: my.url('skiff_restored') });
});
