import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, verify } from 'node:crypto';
import { DEFAULT_ISSUER, ServiceAccountTokens } from '../../src/apiserver/serviceaccount-tokens.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-sa-'));
  dirs.push(d);
  return d;
}

const REQ = { namespace: 'apps', serviceAccountName: 'builder', serviceAccountUid: 'sa-uid-1', expirationSeconds: 3600 };
const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString());

test('issued tokens carry Kubernetes claims and verify to the service account user', () => {
  const dataDir = tempDir();
  const sa = ServiceAccountTokens.open(dataDir, { now: () => 1_700_000_000 });
  const { token, expirationTimestamp } = sa.issue({ ...REQ, boundObject: { kind: 'Pod', name: 'p1', uid: 'pod-uid' } });
  assert.equal(expirationTimestamp, '2023-11-14T23:13:20Z');

  const [h, p, s] = token.split('.');
  assert.deepEqual(decode(h), { alg: 'ES256', kid: sa.keyId });
  const claims = decode(p);
  assert.equal(claims.iss, DEFAULT_ISSUER);
  assert.equal(claims.sub, 'system:serviceaccount:apps:builder');
  assert.deepEqual(claims.aud, [DEFAULT_ISSUER]);
  assert.equal(claims.iat, 1_700_000_000);
  assert.equal(claims.nbf, 1_700_000_000);
  assert.equal(claims.exp, 1_700_003_600);
  assert.match(claims.jti, /^[0-9a-f-]{36}$/);
  assert.deepEqual(claims['kubernetes.io'], {
    namespace: 'apps', serviceaccount: { name: 'builder', uid: 'sa-uid-1' }, pod: { name: 'p1', uid: 'pod-uid' },
  });
  // An independent ES256 check: raw r||s signature over header.payload with the stored key.
  const key = createPublicKey(readFileSync(join(dataDir, 'server', 'tls', 'service.key'), 'utf8'));
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')));

  assert.deepEqual(sa.verify(token), {
    name: 'system:serviceaccount:apps:builder',
    uid: 'sa-uid-1',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:apps', 'system:authenticated'],
    extra: {
      'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`],
      'authentication.kubernetes.io/pod-name': ['p1'],
      'authentication.kubernetes.io/pod-uid': ['pod-uid'],
    },
  });
});

test('the key is created once (0600) and survives restarts, so old tokens stay valid', () => {
  const dataDir = tempDir();
  const { token } = ServiceAccountTokens.open(dataDir).issue(REQ);
  assert.equal(statSync(join(dataDir, 'server', 'tls', 'service.key')).mode & 0o777, 0o600);
  const again = ServiceAccountTokens.open(dataDir);
  assert.equal(again.verify(token)?.name, 'system:serviceaccount:apps:builder');
  assert.equal(ServiceAccountTokens.open(tempDir()).verify(token), null, 'another server\'s key rejects it');
});

test('expired, not-yet-valid, tampered, foreign-audience and malformed tokens are rejected', () => {
  let now = 1_000_000;
  const sa = ServiceAccountTokens.open(tempDir(), { now: () => now });
  const { token } = sa.issue({ ...REQ, expirationSeconds: 600 });
  now += 600 + 59;
  assert.ok(sa.verify(token), 'within the 60 s clock-skew allowance');
  now += 2;
  assert.equal(sa.verify(token), null, 'expired');
  now = 1_000_000 - 61;
  assert.equal(sa.verify(token), null, 'not valid yet');
  now = 1_000_000;

  const [h, p, s] = token.split('.');
  const claims = decode(p);
  const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:kube-system:admin', 'kubernetes.io': { ...claims['kubernetes.io'], namespace: 'kube-system', serviceaccount: { name: 'admin', uid: 'x' } } })).toString('base64url');
  assert.equal(sa.verify(`${h}.${forged}.${s}`), null, 'payload changed after signing');
  const flipped = Buffer.from(s, 'base64url');
  flipped[10] ^= 1;
  assert.equal(sa.verify(`${h}.${p}.${flipped.toString('base64url')}`), null, 'signature changed');
  assert.equal(sa.verify(`${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`), null, 'alg none');
  for (const junk of ['', 'a.b', 'a.b.c', `${h}.${p}.AAAA`, 'x'.repeat(5000)]) assert.equal(sa.verify(junk), null);

  const other = sa.issue({ ...REQ, audiences: ['vault'] });
  assert.equal(sa.verify(other.token), null, 'audience the API server does not accept');
  const both = sa.issue({ ...REQ, audiences: ['vault', DEFAULT_ISSUER] });
  assert.ok(sa.verify(both.token));
});

test('jwks publishes the verification key under the token kid', () => {
  const sa = ServiceAccountTokens.open(tempDir());
  const { keys } = sa.jwks();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].kid, sa.keyId);
  assert.equal(keys[0].kty, 'EC');
  assert.equal(keys[0].crv, 'P-256');
  assert.equal(keys[0].alg, 'ES256');
  assert.equal('d' in keys[0], false, 'no private part');
});
