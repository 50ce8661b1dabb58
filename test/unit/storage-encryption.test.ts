// Encryption at rest below the watch cache: ciphertext in the datastore, plaintext in the cache, every
// configured key reads, the first writes, and configurations Kubernetes would refuse are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteBackend } from '../../src/storage/sqlite.js';
import { CacheStore } from '../../src/storage/cache.js';
import { EncryptingBackend, loadEncryptionConfig, encryptValue, decryptValue, type EncryptionProvider } from '../../src/storage/encryption.js';
import { tempDir } from '../helpers/storage-temp.js';

const key = (name: string, bytes = 32) => ({ name, secret: randomBytes(bytes).toString('base64') });
const config = (...providers: EncryptionProvider[]) => ({
  kind: 'EncryptionConfiguration', apiVersion: 'apiserver.config.k8s.io/v1', resources: [{ resources: ['secrets'], providers }],
});

test('aescbc and aesgcm round-trip with Kubernetes prefixes; GCM binds the storage key', () => {
  for (const bytes of [16, 24, 32]) {
    const cbc = loadEncryptionConfig(config({ aescbc: { keys: [key('k1', bytes)] } })).get('/core/secrets/')!;
    const enc = encryptValue(cbc, '/core/secrets/default/a', '{"data":{"x":"c2VjcmV0"}}');
    assert.match(enc, /^k8s:enc:aescbc:v1:k1:/);
    assert.ok(!enc.includes('c2VjcmV0'));
    assert.equal(decryptValue(cbc, '/core/secrets/default/a', enc), '{"data":{"x":"c2VjcmV0"}}');
  }
  const gcm = loadEncryptionConfig(config({ aesgcm: { keys: [key('g1')] } })).get('/core/secrets/')!;
  const enc = encryptValue(gcm, '/core/secrets/default/a', 'plain');
  assert.match(enc, /^k8s:enc:aesgcm:v1:g1:/);
  assert.equal(decryptValue(gcm, '/core/secrets/default/a', enc), 'plain');
  assert.throws(() => decryptValue(gcm, '/core/secrets/default/b', enc), 'moved to another key: authentication fails');
});

test('secretbox (XSalsa20-Poly1305) round-trips with a 24-byte nonce in front; a changed byte fails', () => {
  const sb = loadEncryptionConfig(config({ secretbox: { keys: [key('s1')] } })).get('/core/secrets/')!;
  const enc = encryptValue(sb, '/core/secrets/default/a', '{"data":{"x":"c2VjcmV0"}}');
  assert.match(enc, /^k8s:enc:secretbox:v1:s1:/);
  assert.ok(!enc.includes('c2VjcmV0'));
  const payload = Buffer.from(enc.slice('k8s:enc:secretbox:v1:s1:'.length), 'base64');
  assert.equal(payload.length, 24 + 16 + '{"data":{"x":"c2VjcmV0"}}'.length, 'nonce, Poly1305 tag, ciphertext');
  assert.equal(decryptValue(sb, '/core/secrets/default/a', enc), '{"data":{"x":"c2VjcmV0"}}');
  payload[30] ^= 1;
  assert.throws(() => decryptValue(sb, '/core/secrets/default/a', 'k8s:enc:secretbox:v1:s1:' + payload.toString('base64')), /failed to authenticate/);
});

test('configurations Kubernetes refuses are refused', () => {
  assert.throws(() => loadEncryptionConfig({ kind: 'Nope' }), /EncryptionConfiguration/);
  assert.throws(() => loadEncryptionConfig(config({ aescbc: { keys: [key('k', 7)] } })), /16, 24 or 32 bytes/);
  assert.throws(() => loadEncryptionConfig(config({ secretbox: { keys: [key('s', 16)] } })), /secretbox must be 32 bytes/);
  assert.throws(() => loadEncryptionConfig(config({ aescbc: { keys: [] } })), /no keys/);
  // identity first: nothing is encrypted, the AES key still reads.
  const t = loadEncryptionConfig(config({ identity: {} }, { aescbc: { keys: [key('k')] } })).get('/core/secrets/')!;
  assert.equal(t.writer, undefined);
  assert.equal(t.readers.size, 1);
});

test('the datastore holds ciphertext, the cache plaintext; a key change keeps old values readable', async (t) => {
  const file = join(tempDir(t), 'state.db');
  const inner = new SqliteBackend(file);
  const enc = new EncryptingBackend(inner);
  const k1 = key('k1');
  const k2 = key('k2');
  enc.setConfig(loadEncryptionConfig(config({ aescbc: { keys: [k1] } }, { identity: {} })));
  const store = new CacheStore(enc);
  t.after(() => store.close());
  await store.start();
  await store.create('/core/secrets/default/a', { metadata: { name: 'a', namespace: 'default' }, data: { v: 'dmFsdWUtYQ==' } });
  await store.create('/core/configmaps/default/c', { metadata: { name: 'c', namespace: 'default' }, data: { v: 'plain-cm' } });
  assert.match((await inner.get('/core/secrets/default/a'))!.value, /^k8s:enc:aescbc:v1:k1:/);
  assert.match((await inner.get('/core/configmaps/default/c'))!.value, /plain-cm/, 'other resources untouched');
  assert.equal(store.get('/core/secrets/default/a')!.obj.data.v, 'dmFsdWUtYQ==');

  // Rotate: k2 writes, k1 still reads.
  enc.setConfig(loadEncryptionConfig(config({ aescbc: { keys: [k2, k1] } }, { identity: {} })));
  const cur = store.get('/core/secrets/default/a')!;
  await store.update(cur.key, { ...cur.obj, data: { v: 'dmFsdWUtYg==' } }, cur.modRevision);
  assert.match((await inner.get('/core/secrets/default/a'))!.value, /^k8s:enc:aescbc:v1:k2:/);
  assert.equal((await enc.get('/core/secrets/default/a'))!.value.includes('dmFsdWUtYg=='), true);
  const hist = await enc.history(0, 100);
  assert.ok(hist.every((e) => !e.kv.value.startsWith('k8s:enc:')), 'history is decrypted with every configured key');
});
