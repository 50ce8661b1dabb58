// Bootstrap data shared through the datastore (src/server/datastore-bootstrap.ts), on SQLite: a first
// server stores its authorities sealed with the token, a second one with the same token installs
// them, one with another token is refused without a write, a damaged record is refused, and a CA
// rotation moves through the record in the right direction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { openBackend, tempDir } from '../helpers/storage-temp.js';
import {
  BOOTSTRAP_PREFIX, BootstrapError, bootstrapKey, openBootstrap, prepareDatastoreBootstrap, readSharedSet, rekeyDatastoreBootstrap,
  sealBootstrap, SHARED_FILES,
} from '../../src/server/datastore-bootstrap.js';
import { CacheStore } from '../../src/storage/cache.js';
import { SqliteBackend } from '../../src/storage/sqlite.js';

/** A data dir holding a made-up shared set (the module copies text; it does not parse certificates). */
function seedDataDir(dir: string, tag: string, extra: Record<string, string> = {}): void {
  for (const f of SHARED_FILES) {
    if (!f.required) continue;
    mkdirSync(join(dir, 'server', f.path, '..'), { recursive: true });
    writeFileSync(join(dir, 'server', f.path), `${tag}:${f.path}\n`);
  }
  for (const [p, text] of Object.entries(extra)) {
    mkdirSync(join(dir, 'server', p, '..'), { recursive: true });
    writeFileSync(join(dir, 'server', p), text);
  }
}

test('round trip: the first server stores its set, a second one with the token gets the same files', async (t) => {
  const root = tempDir(t);
  const backend = await openBackend(t, join(root, 'state.db'));
  const one = join(root, 'one');
  const two = join(root, 'two');
  // The first server: nothing in the datastore; it creates its files, then finish() stores them.
  const first = await prepareDatastoreBootstrap(backend, { dataDir: one });
  assert.equal(first.state, 'new');
  seedDataDir(one, 'cluster-a', { 'cred/encryption-config.json': '{"kind":"EncryptionConfiguration"}' });
  await first.finish(backend, 'secret-password-1');
  const { kvs } = await backend.listLatest(BOOTSTRAP_PREFIX);
  assert.deepEqual(kvs.map((kv) => kv.key), [bootstrapKey('secret-password-1')]);
  assert.ok(!kvs[0]!.value.includes('cluster-a'), 'the record is not plain text');

  const second = await prepareDatastoreBootstrap(backend, { dataDir: two, password: 'secret-password-1' });
  assert.equal(second.state, 'joined');
  assert.deepEqual(readSharedSet(two), readSharedSet(one));
  assert.equal(statSync(join(two, 'server', 'tls', 'server-ca.key')).mode & 0o777, 0o600);
  await second.finish(backend, 'secret-password-1');
  // A restart of either finds its files current and writes nothing.
  const rev = backend.currentRevision();
  const again = await prepareDatastoreBootstrap(backend, { dataDir: one, password: 'secret-password-1' });
  assert.equal(again.state, 'current');
  await again.finish(backend, 'secret-password-1');
  assert.equal(backend.currentRevision(), rev);

  // The watch cache loads every key: the record must be one it can hold.
  const store = new CacheStore(new SqliteBackend(join(root, 'state.db')));
  t.after(() => store.close());
  await store.start();
  assert.equal(store.get(bootstrapKey('secret-password-1'))?.obj.kind, 'BootstrapData');
});

test('another token is refused with one line and nothing is written; no token on a used datastore too', async (t) => {
  const root = tempDir(t);
  const backend = await openBackend(t, join(root, 'state.db'));
  const first = await prepareDatastoreBootstrap(backend, { dataDir: join(root, 'one'), password: 'right-password' });
  seedDataDir(join(root, 'one'), 'a');
  await first.finish(backend, 'right-password');
  const rev = backend.currentRevision();
  const other = join(root, 'other');
  await assert.rejects(prepareDatastoreBootstrap(backend, { dataDir: other, password: 'wrong-password' }),
    (e: Error) => e instanceof BootstrapError && /encrypted with a different token/.test(e.message) && !e.message.includes('\n'));
  await assert.rejects(prepareDatastoreBootstrap(backend, { dataDir: other }), (e: Error) => e instanceof BootstrapError && /--token/.test(e.message));
  assert.equal(backend.currentRevision(), rev);
  assert.deepEqual(readSharedSet(other), {});
  assert.equal(existsSync(join(other, 'server')), false);
});

test('a tampered record is refused, a record copied under another key does not decrypt', async (t) => {
  const root = tempDir(t);
  const backend = await openBackend(t, join(root, 'state.db'));
  const set = { 'tls/server-ca.crt': 'c', 'tls/server-ca.key': 'k', 'tls/client-ca.crt': 'c2', 'tls/client-ca.key': 'k2',
    'tls/request-header-ca.crt': 'c3', 'tls/request-header-ca.key': 'k3', 'tls/service.key': 's' };
  const key = bootstrapKey('pw-123456');
  const sealed = await sealBootstrap(key, 'pw-123456', set);
  assert.deepEqual(await openBootstrap(key, 'pw-123456', sealed), set);
  const rec = JSON.parse(sealed);
  const data = Buffer.from(rec.data, 'base64');
  data[5] ^= 1;
  const tampered = JSON.stringify({ ...rec, data: data.toString('base64') });
  await assert.rejects(openBootstrap(key, 'pw-123456', tampered), /altered or damaged/);
  await assert.rejects(openBootstrap(bootstrapKey('other'), 'pw-123456', sealed), /altered or damaged/);
  await assert.rejects(openBootstrap(key, 'pw-123456', 'not json'), BootstrapError);

  await backend.create(key, tampered);
  const dir = join(root, 'joiner');
  await assert.rejects(prepareDatastoreBootstrap(backend, { dataDir: dir, password: 'pw-123456' }), /altered or damaged/);
  assert.deepEqual(readSharedSet(dir), {});
});

test('a data dir of another cluster is refused; a CA rotation moves from the server that made it to the others', async (t) => {
  const root = tempDir(t);
  const backend = await openBackend(t, join(root, 'state.db'));
  const pw = 'rotation-pw';
  const one = join(root, 'one');
  const two = join(root, 'two');
  const first = await prepareDatastoreBootstrap(backend, { dataDir: one, password: pw });
  seedDataDir(one, 'v1');
  await first.finish(backend, pw);
  await (await prepareDatastoreBootstrap(backend, { dataDir: two, password: pw })).finish(backend, pw);

  const stranger = join(root, 'stranger');
  seedDataDir(stranger, 'other-cluster');
  await assert.rejects(prepareDatastoreBootstrap(backend, { dataDir: stranger, password: pw }), /belongs to another cluster/);

  // Server one's CA rotated while it was down (rotate-ca writes the new CA and keeps the old as .previous).
  writeFileSync(join(one, 'server', 'tls', 'server-ca.previous.crt'), 'v1:tls/server-ca.crt\n');
  writeFileSync(join(one, 'server', 'tls', 'server-ca.crt'), 'v2:tls/server-ca.crt\n');
  const pushed = await prepareDatastoreBootstrap(backend, { dataDir: one, password: pw });
  assert.equal(pushed.state, 'local-change');
  await pushed.finish(backend, pw);
  // Server two, unchanged since it last agreed, takes the rotated set at its next start.
  const updated = await prepareDatastoreBootstrap(backend, { dataDir: two, password: pw });
  assert.equal(updated.state, 'updated');
  assert.deepEqual(readSharedSet(two), readSharedSet(one));

  // `skiff token rotate`: the record moves to the new password's key.
  await rekeyDatastoreBootstrap(backend, pw, 'new-rotation-pw');
  const { kvs } = await backend.listLatest(BOOTSTRAP_PREFIX);
  assert.deepEqual(kvs.map((kv) => kv.key), [bootstrapKey('new-rotation-pw')]);
  assert.equal((await prepareDatastoreBootstrap(backend, { dataDir: two, password: 'new-rotation-pw' })).state, 'current');
  await assert.rejects(prepareDatastoreBootstrap(backend, { dataDir: join(root, 'late'), password: pw }), /different token/);
});
