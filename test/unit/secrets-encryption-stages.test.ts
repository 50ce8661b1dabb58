// The secrets-encrypt stages on a datastore (no HTTP): enable/disable switch the writer, prepare adds
// a key that only reads, rotate needs a prepared key, reencrypt rewrites what another key wrote and
// drops retired keys; the config file stays 0600 and reloads on the next start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync, readFileSync } from 'node:fs';
import { openStore } from '../../src/storage/index.js';
import { SecretsEncryption } from '../../src/server/secrets-encryption.js';
import { tempDir } from '../helpers/storage-temp.js';

async function open(t: Parameters<typeof tempDir>[0], dataDir: string, enable: boolean) {
  const enc = new SecretsEncryption(dataDir, enable);
  const { store, backend } = await openStore(dataDir, { wrap: enc.wrap });
  enc.attach(store);
  t.after(() => store.close());
  return { enc, store, backend };
}

const raw = async (backend: { get(k: string): Promise<{ value: string } | undefined> }, key: string) => (await backend.get(key))!.value;

test('enable, prepare, rotate, reencrypt, disable', async (t) => {
  const dataDir = tempDir(t);
  const { enc, store, backend } = await open(t, dataDir, false);
  const key = '/core/secrets/default/a';
  await store.create(key, { metadata: { name: 'a', namespace: 'default' }, data: { v: 'cGxhaW4=' } });
  assert.match(await raw(backend, key), /^\{/);
  assert.equal((await enc.run('status')).enabled, false);

  const on = await enc.run('enable');
  assert.equal(on.enabled, true);
  assert.equal(statSync(enc.configPath).mode & 0o777, 0o600);
  await assert.rejects(enc.run('rotate'), /needs a prepared key/);
  await enc.run('reencrypt');
  assert.match(await raw(backend, key), /^k8s:enc:aescbc:v1:aescbckey:/);

  const prepared = await enc.run('prepare');
  assert.deepEqual(prepared.keys.map((k) => [k.name.replace(/-\d+T\d+$/, '-T'), k.active]), [['aescbckey', true], ['aescbckey-T', false], ['', false]]);
  const rotated = await enc.run('rotate');
  assert.equal(rotated.stage, 'rotate');
  assert.match(rotated.keys[0].name, /^aescbckey-/);
  assert.match(await raw(backend, key), /^k8s:enc:aescbc:v1:aescbckey:/, 'not rewritten before reencrypt, still readable');
  assert.equal(store.get(key)!.obj.data.v, 'cGxhaW4=');
  const done = await enc.run('reencrypt');
  assert.equal(done.stage, 'reencrypt_finished');
  assert.deepEqual(done.keys.map((k) => k.type), ['aescbc', 'identity'], 'the retired key is dropped');
  assert.match(await raw(backend, key), new RegExp(`^k8s:enc:aescbc:v1:${done.keys[0].name}:`));

  const off = await enc.run('disable');
  assert.equal(off.enabled, false);
  await enc.run('reencrypt');
  assert.match(await raw(backend, key), /^\{/, 'disable + reencrypt stores plaintext again');
  assert.equal(JSON.parse(readFileSync(enc.configPath, 'utf8')).resources[0].providers[0].identity !== undefined, true);
  await assert.rejects(enc.run('nonsense'), /unknown secrets-encrypt operation/);
});
