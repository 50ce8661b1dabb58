// Snapshots and continuous backup below the server: k3s-style names and retention, the cron
// schedule, the dump format and its two restore paths, and the backup stream's segment format,
// torn-tail handling and point-in-time replay, on real SQLite backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteBackend } from '../../src/storage/sqlite.js';
import { tempDir, openBackend } from '../helpers/storage-temp.js';
import { listSnapshots, namePrefix, pruneSnapshots, saveSnapshot, snapshotName, deleteSnapshots, restoreSnapshot } from '../../src/server/snapshot.js';
import { nextRun, checkCron, SnapshotScheduler } from '../../src/server/snapshot-schedule.js';
import { applyState, readDump, readState, writeDump } from '../../src/server/snapshot-dump.js';
import { BackupStream, decodeLine, encodeLine, segmentName } from '../../src/server/backup-stream.js';
import { parseAt, streamState } from '../../src/server/backup-stream-restore.js';

const noLog = () => {};

/** A data dir with a started SQLite datastore where the server keeps it. */
async function dataDirWithDb(t: import('node:test').TestContext): Promise<{ dataDir: string; backend: SqliteBackend }> {
  const dataDir = tempDir(t);
  mkdirSync(join(dataDir, 'server', 'db'), { recursive: true });
  writeFileSync(join(dataDir, 'server', 'token'), 'secret-token\n');
  const backend = await openBackend(t, join(dataDir, 'server', 'db', 'state.db'));
  return { dataDir, backend };
}

test('names are <prefix>-<node>-<unix seconds>, and the prefix is recovered for a node', () => {
  const at = new Date('2026-12-05T12:00:00.700Z');
  assert.equal(snapshotName('etcd-snapshot', 'node-a', at), `etcd-snapshot-node-a-${Math.floor(at.getTime() / 1000)}`);
  assert.equal(namePrefix('etcd-snapshot-node-a-1796472000', 'node-a'), 'etcd-snapshot');
  assert.equal(namePrefix('on-demand-node-a-1796472000', 'node-a'), 'on-demand');
  assert.equal(namePrefix('etcd-snapshot-node-b-1796472000', 'node-a'), undefined, 'another node\'s snapshot');
  assert.equal(namePrefix('etcd-snapshot-node-a-x', 'node-a'), undefined);
});

test('cron: k3s\'s default runs at 00:00 and 12:00; a seconds field is allowed; nonsense is one clear error', () => {
  const after = new Date(2026, 11, 5, 12, 30, 0);
  const next = nextRun('0 */12 * * *', after);
  assert.deepEqual([next.getDate(), next.getHours(), next.getMinutes()], [6, 0, 0]);
  const s = nextRun('*/3 * * * * *', new Date(2026, 11, 5, 12, 30, 1));
  assert.equal(s.getSeconds(), 3);
  assert.throws(() => checkCron('every day'), /--snapshot-schedule-cron: not a cron expression: "every day"/);
});

test('save, list, prune to the retention (only that prefix and node), delete, compressed snapshots', async (t) => {
  const { dataDir, backend } = await dataDirWithDb(t);
  await backend.create('/core/configmaps/default/a', '{"v":1}');
  const base = new Date('2026-12-05T00:00:00Z').getTime();
  for (let i = 0; i < 4; i++) await saveSnapshot(dataDir, { name: 'etcd-snapshot', node: 'n1', backend, now: new Date(base + i * 3600_000) });
  await saveSnapshot(dataDir, { name: 'on-demand', node: 'n1', backend, now: new Date(base) });
  await saveSnapshot(dataDir, { name: 'etcd-snapshot', node: 'n2', backend, now: new Date(base) });
  const gz = await saveSnapshot(dataDir, { name: 'packed', node: 'n1', backend, compress: true, now: new Date(base) });
  assert.equal(gz.file, 'state.db.gz');
  assert.equal(listSnapshots(dataDir).length, 7);
  const pruned = pruneSnapshots(dataDir, { prefix: 'etcd-snapshot', retention: 2, node: 'n1' });
  assert.deepEqual(pruned, [0, 1].map((i) => snapshotName('etcd-snapshot', 'n1', new Date(base + i * 3600_000))), 'the oldest go first');
  const left = listSnapshots(dataDir).map((s) => s.name);
  assert.equal(left.length, 5);
  assert.ok(left.includes(snapshotName('on-demand', 'n1', new Date(base))) && left.includes(snapshotName('etcd-snapshot', 'n2', new Date(base))));
  // Two saves in one second get distinct names.
  const again = await saveSnapshot(dataDir, { name: 'on-demand', node: 'n1', backend, now: new Date(base) });
  assert.equal(again.name, snapshotName('on-demand', 'n1', new Date(base + 1000)));
  assert.deepEqual(deleteSnapshots(dataDir, [again.name]), [again.name]);
  assert.throws(() => deleteSnapshots(dataDir, ['nope']), /no snapshot named "nope"/);
  assert.ok(!readdirSync(join(dataDir, 'server', 'db', 'snapshots')).some((n) => n.startsWith('.')), 'no partial snapshot left');
  // A compressed snapshot restores (the server is stopped: the backend closes first).
  await backend.update('/core/configmaps/default/a', '{"v":2}', (await backend.get('/core/configmaps/default/a'))!.modRevision);
  const seen = backend.currentRevision();
  await backend.close();
  const r = await restoreSnapshot(dataDir, gz.path);
  assert.ok(r.kept);
  const back = await openBackend(t, join(dataDir, 'server', 'db', 'state.db'));
  assert.equal((await back.get('/core/configmaps/default/a'))!.value, '{"v":1}');
  // As etcdutl's --bump-revision --mark-compacted: past every revision seen, history before it gone.
  assert.equal(back.currentRevision(), seen + 1);
  assert.equal(back.compactedRevision(), seen + 1);
  assert.equal((await back.create('/core/configmaps/default/new', '{}')).modRevision, seen + 2);
});

test('the scheduler saves on its cron and prunes to the retention', async (t) => {
  const { dataDir, backend } = await dataDirWithDb(t);
  await backend.create('/core/configmaps/default/a', '{}');
  const s = new SnapshotScheduler({ dataDir, cron: '* * * * * *', retention: 2, name: 'etcd-snapshot', node: 'n1', backend, log: noLog });
  t.after(() => s.stop());
  s.start();
  const deadline = Date.now() + 30_000;
  while (s.stats.saved < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await s.stop();
  assert.ok(s.stats.saved >= 4, `saved ${s.stats.saved}`);
  assert.equal(listSnapshots(dataDir).length, 2);
  assert.equal(s.stats.failed, 0);
});

test('a dump round-trips; applyState loads an empty database with the same revisions, and diffs a non-empty one', async (t) => {
  const dir = tempDir(t);
  const src = await openBackend(t, join(dir, 'a.db'));
  await src.create('/core/configmaps/default/a', '{"a":1}');
  const b = await src.create('/core/configmaps/default/b', '{"b":1}');
  await src.update('/core/configmaps/default/b', '{"b":2}', b.modRevision);
  await src.create('/core/configmaps/default/c', '{"c":1}');
  await src.delete('/core/configmaps/default/c');
  const dump = await readState(src, 'sqlite');
  for (const gz of [false, true]) {
    const file = join(dir, gz ? 'd.jsonl.gz' : 'd.jsonl');
    await writeDump(file, dump, gz);
    assert.deepEqual(await readDump(file), dump);
  }
  const text = readFileSync(join(dir, 'd.jsonl'), 'utf8');
  writeFileSync(join(dir, 'cut.jsonl'), text.split('\n').slice(0, 2).join('\n') + '\n');
  await assert.rejects(readDump(join(dir, 'cut.jsonl')), /truncated/);

  const empty = await openBackend(t, join(dir, 'b.db'));
  assert.equal((await applyState(empty, dump.kvs, dump.revision)).mode, 'load');
  await empty.close();
  const loaded = await openBackend(t, join(dir, 'b.db'));
  assert.equal(loaded.currentRevision(), dump.revision);
  assert.equal(loaded.compactedRevision(), dump.revision, 'no history before the restore: older watches get 410');
  assert.deepEqual((await loaded.listLatest('')).kvs, dump.kvs, 'same keys, values and revisions');
  // New writes continue after the restored revision.
  assert.equal((await loaded.create('/core/configmaps/default/d', '{}')).modRevision, dump.revision + 1);

  const busy = await openBackend(t, join(dir, 'c.db'));
  await busy.create('/core/configmaps/default/a', '{"a":"other"}');
  await busy.create('/core/configmaps/default/z', '{}');
  const r = await applyState(busy, dump.kvs, dump.revision);
  assert.equal(r.mode, 'diff');
  assert.deepEqual((await busy.listLatest('')).kvs.map((kv) => [kv.key, kv.value]), dump.kvs.map((kv) => [kv.key, kv.value]));
});

test('stream lines carry a check; a torn or altered line is refused', () => {
  const line = encodeLine({ r: 7, t: 1, e: 'u', k: '/core/secrets/ns/x', v: 'k8s:enc:aescbc:v1:key:AAAA', c: 3 });
  assert.match(line, /^\{"r":7,"t":1,"e":"u","k":"\/core\/secrets\/ns\/x","v":"k8s:enc:aescbc:v1:key:AAAA","c":3\}\t[0-9a-f]{16}\n$/);
  assert.deepEqual(decodeLine(line.slice(0, -1)), { r: 7, t: 1, e: 'u', k: '/core/secrets/ns/x', v: 'k8s:enc:aescbc:v1:key:AAAA', c: 3 });
  assert.equal(decodeLine(line.slice(0, 20)), undefined);
  assert.equal(decodeLine(line.slice(0, -1).replace('"r":7', '"r":8')), undefined);
  assert.equal(segmentName(42), 'seg-0000000000000042.log');
  assert.equal(parseAt('1796472000').toISOString(), '2026-12-05T12:00:00.000Z');
  assert.throws(() => parseAt('yesterday'), /--at: not a time/);
});

test('the stream replays to the newest state or to a point in time, across epochs, dropping a torn tail', async (t) => {
  const { dataDir, backend } = await dataDirWithDb(t);
  await backend.create('/core/configmaps/default/before', '{}');
  const dir = join(tempDir(t), 'stream');
  const stream = new BackupStream({ dir, dataDir, node: 'n1', backend, backendName: 'sqlite', intervalMs: 50, log: noLog });
  t.after(() => stream.stop());
  await stream.start();
  const a = await backend.create('/core/configmaps/default/a', '{"v":1}');
  await backend.update('/core/configmaps/default/a', '{"v":2}', a.modRevision);
  await stream.flush();
  await new Promise((r) => setTimeout(r, 20));
  const middle = new Date();
  await new Promise((r) => setTimeout(r, 20));
  await backend.delete('/core/configmaps/default/before');
  await backend.create('/core/configmaps/default/b', '{}');
  await stream.stop();
  assert.equal(stream.stats.lines, 4);
  const [epoch] = readdirSync(dir);
  assert.ok(existsSync(join(dir, epoch, 'creds', 'token')), 'credentials travel with the stream');

  const latest = await streamState(dir);
  assert.deepEqual(latest.kvs.map((kv) => [kv.key, kv.value]), [['/core/configmaps/default/a', '{"v":2}'], ['/core/configmaps/default/b', '{}']]);
  assert.equal(latest.revision, backend.currentRevision());
  assert.deepEqual(latest.kvs, (await backend.listLatest('')).kvs, 'revisions as the datastore has them');
  const then = await streamState(dir, middle);
  assert.deepEqual(then.kvs.map((kv) => kv.key), ['/core/configmaps/default/a', '/core/configmaps/default/before']);

  // A crash in the middle of a write leaves a torn last line: dropped, the rest replays.
  const seg = readdirSync(join(dir, epoch)).find((n) => n.startsWith('seg-'))!;
  appendFileSync(join(dir, epoch, seg), '{"r":99,"t":1,"e":"c","k":"/x"');
  const torn = await streamState(dir);
  assert.equal(torn.damaged, 1);
  assert.equal(torn.revision, latest.revision);

  // A restart makes a new epoch from a new base; an earlier time still replays from the first.
  const again = new BackupStream({ dir, dataDir, node: 'n1', backend, backendName: 'sqlite', intervalMs: 50, log: noLog });
  await again.start();
  await backend.create('/core/configmaps/default/c', '{}');
  await again.stop();
  assert.equal(readdirSync(dir).length, 2);
  assert.deepEqual((await streamState(dir)).kvs.map((kv) => kv.key), ['/core/configmaps/default/a', '/core/configmaps/default/b', '/core/configmaps/default/c']);
  assert.deepEqual((await streamState(dir, middle)).kvs.map((kv) => kv.key), ['/core/configmaps/default/a', '/core/configmaps/default/before']);
  await assert.rejects(streamState(dir, new Date(2000, 0, 1)), /the backup stream begins at/);
});

test('a new epoch taken while writes and flushes go on loses nothing and repeats nothing', async (t) => {
  const { dataDir, backend } = await dataDirWithDb(t);
  for (let i = 0; i < 50; i++) await backend.create(`/core/configmaps/default/pre-${i}`, '{}');
  const dir = join(tempDir(t), 'stream');
  const stream = new BackupStream({ dir, dataDir, node: 'n1', backend, backendName: 'sqlite', intervalMs: 5, log: noLog });
  t.after(() => stream.stop());
  await stream.start();
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const kv = await backend.create(`/core/configmaps/default/w-${i}`, '{"v":0}');
      await backend.update(kv.key, '{"v":1}', kv.modRevision);
      if (i % 3 === 0) await backend.delete(kv.key);
      await new Promise((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  await (stream as unknown as { newEpoch(): Promise<void> }).newEpoch();
  await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await writer;
  await stream.stop();
  assert.equal(readdirSync(dir).length, 2);
  const st = await streamState(dir);
  assert.deepEqual(st.kvs, (await backend.listLatest('')).kvs);
  assert.equal(st.damaged, 0);
  // The newer epoch's lines continue exactly after its base: no gap, no repeat.
  const newest = readdirSync(dir).sort()[1];
  const base = JSON.parse(readFileSync(join(dir, newest, 'epoch.json'), 'utf8')).baseRevision as number;
  const revs = readdirSync(join(dir, newest)).filter((n) => n.startsWith('seg-')).sort()
    .flatMap((n) => readFileSync(join(dir, newest, n), 'utf8').split('\n').filter(Boolean).map((l) => decodeLine(l)!.r));
  assert.deepEqual(revs, Array.from({ length: revs.length }, (_, i) => base + 1 + i));
});

test('with encryption at rest the stream and the dumps hold ciphertext, and a restore reads back', async (t) => {
  const { EncryptingBackend, loadEncryptionConfig } = await import('../../src/storage/encryption.js');
  const { randomBytes } = await import('node:crypto');
  const { dataDir, backend } = await dataDirWithDb(t);
  const enc = new EncryptingBackend(backend);
  const config = loadEncryptionConfig({ kind: 'EncryptionConfiguration', apiVersion: 'apiserver.config.k8s.io/v1',
    resources: [{ resources: ['secrets'], providers: [{ secretbox: { keys: [{ name: 'k1', secret: randomBytes(32).toString('base64') }] } }] }] });
  enc.setConfig(config);
  await enc.create('/core/secrets/default/before', '{"data":{"x":"cGxhaW4tYmVmb3Jl"}}');
  const dir = join(tempDir(t), 'stream');
  const stream = new BackupStream({ dir, dataDir, node: 'n1', backend, backendName: 'sqlite', intervalMs: 50, log: noLog });
  t.after(() => stream.stop());
  await stream.start();
  await enc.create('/core/secrets/default/after', '{"data":{"x":"cGxhaW4tYWZ0ZXI="}}');
  await stream.stop();
  const [epoch] = readdirSync(dir);
  for (const f of readdirSync(join(dir, epoch)).filter((n) => n.endsWith('.log') || n.endsWith('.jsonl'))) {
    const text = readFileSync(join(dir, epoch, f), 'utf8');
    assert.ok(!text.includes('cGxhaW4'), `${f} holds no plaintext`);
    assert.match(text, /k8s:enc:secretbox:v1:k1:/);
  }
  const st = await streamState(dir);
  const { decryptValue } = await import('../../src/storage/encryption.js');
  const t1 = config.get('/core/secrets/')!;
  assert.deepEqual(st.kvs.map((kv) => decryptValue(t1, kv.key, kv.value)), ['{"data":{"x":"cGxhaW4tYWZ0ZXI="}}', '{"data":{"x":"cGxhaW4tYmVmb3Jl"}}']);
});
