import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { caHash, caHashMatches, ensureServerToken, parseToken } from '../../src/pki/token.js';
import { ensureServerPki } from '../../src/pki/certs.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-token-'));
  dirs.push(d);
  return d;
}

test('the token pins the sha256 of exactly the PEM that /cacerts serves', async () => {
  const dataDir = tempDir();
  const pki = await ensureServerPki({ dataDir, sans: { dns: [], ips: [] } });
  const { token, password } = ensureServerToken(dataDir, pki.caBundlePem());
  const served = readFileSync(join(dataDir, 'server', 'tls', 'server-ca.crt'));
  const expected = createHash('sha256').update(served).digest('hex');
  assert.equal(token, `K10${expected}::server:${password}`);
  assert.match(password, /^[0-9a-f]{32}$/);
  const parsed = parseToken(token);
  assert.equal(parsed.caHash, expected);
  assert.ok(caHashMatches(parsed.caHash!, pki.caBundlePem()));
  assert.ok(!caHashMatches(parsed.caHash!, pki.clientCaPem));
});

test('token files are written 0600 in the full form and reused across restarts', () => {
  const dataDir = tempDir();
  const pem = '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n';
  const first = ensureServerToken(dataDir, pem);
  for (const f of ['token', 'node-token']) {
    const path = join(dataDir, 'server', f);
    assert.equal(readFileSync(path, 'utf8'), `${first.token}\n`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  }
  chmodSync(join(dataDir, 'server', 'token'), 0o644);
  const second = ensureServerToken(dataDir, pem);
  assert.deepEqual(second, first);
  assert.equal(statSync(join(dataDir, 'server', 'token')).mode & 0o777, 0o600, 'a loosened mode is restored');
});

test('a given token wins over the stored one and is persisted; one pinning another CA is refused', () => {
  const dataDir = tempDir();
  const pem = 'ca-one\n';
  ensureServerToken(dataDir, pem);
  const given = ensureServerToken(dataDir, pem, 'my-secret');
  assert.equal(given.password, 'my-secret');
  assert.equal(ensureServerToken(dataDir, pem).password, 'my-secret', 'persisted for the next start without --token');
  const full = ensureServerToken(dataDir, pem, `K10${caHash(pem)}::server:other`);
  assert.equal(full.password, 'other');
  assert.throws(() => ensureServerToken(dataDir, pem, `K10${caHash('ca-two\n')}::server:x`), /does not match this server's CA/);
});

test('parseToken accepts the full form, a bare password and the username-less form', () => {
  const h = 'a'.repeat(64);
  assert.deepEqual(parseToken(`K10${h}::server:pa:ss`), { caHash: h, username: 'server', password: 'pa:ss' });
  assert.deepEqual(parseToken(`K10${h}::node:pw`), { caHash: h, username: 'node', password: 'pw' });
  assert.deepEqual(parseToken(`K10${h.toUpperCase()}::pw`, 'node'), { caHash: h, username: 'node', password: 'pw' });
  assert.deepEqual(parseToken('  plainsecret\n'), { username: 'server', password: 'plainsecret' });
  assert.deepEqual(parseToken('K10ish-but-bare'), { username: 'server', password: 'K10ish-but-bare' });
  assert.deepEqual(parseToken('K10::server:pw'), { username: 'server', password: 'pw' });
  assert.throws(() => parseToken(''), /empty/);
  assert.throws(() => parseToken('K10abc::server:pw'), /CA hash/);
  assert.throws(() => parseToken(`K10${h}::server:`), /no password/);
});
