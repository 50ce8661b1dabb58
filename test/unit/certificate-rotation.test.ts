// Renewal decisions, leaf rotation, CA rotation with its overlap, and token rotation, on files only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ensureServerPki } from '../../src/pki/certs.js';
import { certStatus, clientRenewalDeadline, DAY_MS, leafNeedsRenewal, RENEW_WITHIN_DAYS, residual } from '../../src/pki/renewal.js';
import { formatTable, listCertificates, rotateLeaves } from '../../src/pki/cert-inventory.js';
import { finishCaRotation, rotateCa } from '../../src/pki/ca-rotation.js';
import { caHash, ensureServerToken, isRevoked, parseToken, pemBlocks, pinnedBlock, rotateServerToken } from '../../src/pki/token.js';
import { newClientCsr } from '../../src/pki/csr-request.js';
import { kubeletClientRefusal, parseCsr } from '../../src/api/csr.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), `skiff-sec-rotate-${process.pid}-`));
  dirs.push(d);
  return d;
}
const SANS = { dns: ['skiff.example'], ips: ['10.1.2.3'] };
const tlsFile = (dataDir: string, f: string) => readFileSync(join(dataDir, 'server', 'tls', f), 'utf8');
const notAfter = (pem: string) => Date.parse(new X509Certificate(pem).validTo);
/** A clock 335 days back: the leaves it issues expire 30 days from now. */
const aged = () => new Date(Date.now() - 335 * DAY_MS);

test('renewal window: inside 120 days (k3s) renews and warns, outside is OK; expired and not-yet-valid are told apart', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const v = (days: number) => ({ notBefore: new Date(now.getTime() - DAY_MS), notAfter: new Date(now.getTime() + days * DAY_MS) });
  assert.equal(RENEW_WITHIN_DAYS, 120);
  assert.equal(leafNeedsRenewal(v(30), now), true);
  assert.equal(leafNeedsRenewal(v(119), now), true);
  assert.equal(leafNeedsRenewal(v(121), now), false);
  assert.equal(certStatus(v(30), now), 'WARNING');
  assert.equal(certStatus(v(300), now), 'OK');
  assert.equal(certStatus(v(-1), now), 'EXPIRED');
  assert.equal(certStatus({ notBefore: new Date(now.getTime() + DAY_MS), notAfter: new Date(now.getTime() + 9 * DAY_MS) }, now), 'NOT YET VALID');
  assert.equal(residual(v(30), now), '30d');
  assert.equal(residual({ notBefore: now, notAfter: new Date(now.getTime() + 5 * 3600_000) }, now), '5h');
  assert.equal(residual(v(-3), now), '-3d');
});

test('a node renews its client certificate between 70 % and 90 % of its lifetime', () => {
  const v = { notBefore: new Date(0), notAfter: new Date(1000 * DAY_MS) };
  assert.equal(clientRenewalDeadline(v, 0).getTime(), 700 * DAY_MS);
  assert.equal(clientRenewalDeadline(v, 0.5).getTime(), 800 * DAY_MS);
  assert.equal(clientRenewalDeadline(v, 1).getTime(), 900 * DAY_MS);
  assert.equal(clientRenewalDeadline(v, 7).getTime(), 900 * DAY_MS, 'jitter clamped');
});

test('leaves that expire in 30 days are renewed at the next start, from the same CAs and keys', async () => {
  const dataDir = tempDir();
  const old = await ensureServerPki({ dataDir, sans: SANS, now: aged });
  const left = (notAfter(old.servingCertPem) - Date.now()) / DAY_MS;
  assert.ok(left > 29 && left < 31, `serving certificate expires in ${left} days`);
  assert.equal(listCertificates(dataDir).find((r) => r.file.endsWith('serving-kube-apiserver.crt'))?.status, 'WARNING');

  const renewed = await ensureServerPki({ dataDir, sans: SANS });
  for (const [a, b] of [[old.servingCertPem, renewed.servingCertPem], [old.adminCertPem, renewed.adminCertPem], [old.proxyClientCertPem, renewed.proxyClientCertPem]]) {
    assert.notEqual(a, b);
    assert.ok((notAfter(b) - Date.now()) / DAY_MS > 364);
  }
  assert.equal(renewed.serverCaPem, old.serverCaPem, 'same CA');
  assert.equal(renewed.servingKeyPem, old.servingKeyPem, 'renewal keeps the key');
  assert.ok(new X509Certificate(renewed.servingCertPem).verify(new X509Certificate(old.serverCaPem).publicKey));
  assert.ok(listCertificates(dataDir).every((r) => r.status === 'OK'));
});

test('certificate rotate backs up server/tls and drops the named leaves (keys too) for the next start', async () => {
  const dataDir = tempDir();
  const before = await ensureServerPki({ dataDir, sans: SANS });
  assert.throws(() => rotateLeaves(dataDir, ['nonsense']), /unknown service nonsense/);
  assert.deepEqual(rotateLeaves(dataDir, ['kube-proxy', 'scheduler']), { backupDir: '', ignored: ['kube-proxy', 'scheduler'], rotated: [] }, 'k3s names skiff has no certificate for');
  const r = rotateLeaves(dataDir, ['api-server'], new Date(1_700_000_000_000));
  assert.equal(r.backupDir, join(dataDir, 'server', 'tls-1700000000'));
  assert.equal(readFileSync(join(r.backupDir, 'serving-kube-apiserver.crt'), 'utf8'), before.servingCertPem);
  assert.deepEqual(r.rotated.sort(), ['server/tls/serving-kube-apiserver.crt', 'server/tls/serving-kube-apiserver.key']);
  assert.ok(existsSync(join(dataDir, 'server', 'tls', 'client-admin.crt')), 'other services untouched');
  const after = await ensureServerPki({ dataDir, sans: SANS });
  assert.notEqual(after.servingKeyPem, before.servingKeyPem, 'a new key');
  assert.equal(after.adminCertPem, before.adminCertPem);
  // kubelet: the node's certificate is dropped (it rejoins at its next start), its password kept.
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const credsPath = join(dataDir, 'agent', 'credentials', 'edge-1.json');
  mkdirSync(join(dataDir, 'agent', 'credentials'), { recursive: true });
  writeFileSync(credsPath, JSON.stringify({ nodeName: 'edge-1', nodePassword: 'p'.repeat(32), certPem: before.adminCertPem, keyPem: before.adminKeyPem, caPem: before.serverCaPem }));
  assert.equal(listCertificates(dataDir).find((c) => c.service === 'kubelet')?.file, 'agent/credentials/edge-1.json');
  const k = rotateLeaves(dataDir, ['kubelet'], new Date(1_700_000_100_000));
  assert.deepEqual(k.rotated, ['agent/credentials/edge-1.json']);
  const kept = JSON.parse(readFileSync(credsPath, 'utf8'));
  assert.equal(kept.nodePassword, 'p'.repeat(32));
  assert.equal(kept.certPem, undefined);
  assert.ok(existsSync(join(k.backupDir, 'nodes', 'agent', 'credentials', 'edge-1.json')), 'the old credentials are kept in the backup');
  const table = formatTable(listCertificates(dataDir));
  assert.match(table, /^FILENAME\s+SUBJECT\s+USAGES\s+EXPIRES\s+RESIDUAL TIME\s+STATUS\n/);
  assert.match(table, /server\/tls\/serving-kube-apiserver\.crt\s+CN=kube-apiserver\s+ServerAuth\s+\S+\s+36\dd\s+OK/);
});

/** Whether a TLS client trusting only `ca` accepts a server presenting `cert` (a chain) and `key`. */
async function tlsAccepts(ca: string, cert: string, key: string): Promise<boolean> {
  const server = https.createServer({ cert, key }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<boolean>((resolve) => {
      https.get({ host: '127.0.0.1', port, path: '/', ca, servername: 'localhost' }, (res) => { res.resume(); resolve(res.statusCode === 200); })
        .on('error', () => resolve(false));
    });
  } finally {
    server.close();
  }
}

test('rotate-ca: new CAs with an overlap: old and new trusted, the serving chain verifies with either CA, --finish ends it', async () => {
  const dataDir = tempDir();
  const old = await ensureServerPki({ dataDir, sans: SANS });
  const oldToken = ensureServerToken(dataDir, old.caBundlePem());
  const staged = join(tempDir(), 'new-ca');
  const r = await rotateCa({ dataDir, path: staged });
  assert.equal(r.generated, true);
  assert.deepEqual(r.rotated, ['server-ca', 'client-ca', 'request-header-ca']);
  assert.ok(existsSync(join(staged, 'server-ca.key')));
  assert.equal(tlsFile(dataDir, 'server-ca.previous.crt'), old.serverCaPem);
  await assert.rejects(rotateCa({ dataDir, path: join(tempDir(), 'again') }), /still in its overlap/);

  const next = await ensureServerPki({ dataDir, sans: SANS });
  assert.notEqual(next.serverCaPem, old.serverCaPem);
  assert.deepEqual(pemBlocks(next.caBundlePem()), [next.serverCaPem, old.serverCaPem], '/cacerts: new then old');
  assert.deepEqual(pemBlocks(next.clientCaPem), [pemBlocks(next.clientCaPem)[0], old.clientCaPem], 'both client CAs trusted');
  const leaf = pemBlocks(next.servingCertPem)[0];
  assert.ok(new X509Certificate(leaf).verify(new X509Certificate(next.serverCaPem).publicKey), 'leaf reissued from the new CA');
  assert.ok(await tlsAccepts(old.serverCaPem, next.servingCertPem, next.servingKeyPem), 'a node trusting only the old CA verifies the server');
  assert.ok(await tlsAccepts(next.serverCaPem, next.servingCertPem, next.servingKeyPem), 'a client trusting the new CA verifies the server');
  assert.ok(!(await tlsAccepts(old.serverCaPem, leaf, next.servingKeyPem)), 'without the cross-signed CA the old trust fails');
  // Tokens handed out before the rotation pin the old CA, which the bundle still holds.
  const pin = parseToken(oldToken.token).caHash!;
  assert.equal(pinnedBlock(pin, next.caBundlePem()), old.serverCaPem);
  assert.equal(ensureServerToken(dataDir, next.caBundlePem(), oldToken.token).password, oldToken.password);
  assert.equal(parseToken(ensureServerToken(dataDir, next.caBundlePem()).token).caHash, caHash(next.caBundlePem()));

  assert.deepEqual(finishCaRotation(dataDir).sort(), ['client-ca.previous.crt', 'request-header-ca.previous.crt', 'server-ca.cross.crt', 'server-ca.previous.crt']);
  const done = await ensureServerPki({ dataDir, sans: SANS });
  assert.equal(done.caBundlePem(), done.serverCaPem);
  assert.equal(done.clientCaPem, next.clientCaPem.slice(0, done.clientCaPem.length));
  assert.ok(!(await tlsAccepts(old.serverCaPem, done.servingCertPem, done.servingKeyPem)));
});

test('rotate-ca refuses material that is not a CA or whose key does not match', async () => {
  const dataDir = tempDir();
  await ensureServerPki({ dataDir, sans: SANS });
  const other = tempDir();
  const o = await ensureServerPki({ dataDir: other, sans: SANS });
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const bad = join(tempDir(), 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'server-ca.crt'), o.servingCertPem);
  writeFileSync(join(bad, 'server-ca.key'), o.servingKeyPem);
  writeFileSync(join(bad, 'client-ca.crt'), o.clientCaPem);
  writeFileSync(join(bad, 'client-ca.key'), tlsFile(other, 'server-ca.key'));
  await assert.rejects(rotateCa({ dataDir, path: bad }), /server-ca.crt is not a CA certificate/);
  writeFileSync(join(bad, 'server-ca.crt'), o.serverCaPem);
  writeFileSync(join(bad, 'server-ca.key'), tlsFile(other, 'server-ca.key'));
  await assert.rejects(rotateCa({ dataDir, path: bad }), /client-ca: the CA key does not belong/);
  assert.ok(!existsSync(join(dataDir, 'server', 'tls', 'server-ca.previous.crt')), 'nothing changed');
});

test('token rotate: the new secret is written, the old one is revoked and refused at a restart', async () => {
  const dataDir = tempDir();
  const pki = await ensureServerPki({ dataDir, sans: SANS });
  const first = ensureServerToken(dataDir, pki.caBundlePem(), 'old-secret-123');
  assert.throws(() => rotateServerToken(dataDir, pki.caBundlePem(), first.password, 'old-secret-123'), /is the current one/);
  assert.throws(() => rotateServerToken(dataDir, pki.caBundlePem(), first.password, 'short'), /at least 8/);
  const next = rotateServerToken(dataDir, pki.caBundlePem(), first.password, 'new-secret-456');
  assert.equal(next.password, 'new-secret-456');
  assert.equal(readFileSync(join(dataDir, 'server', 'node-token'), 'utf8').trim(), next.token);
  assert.ok(isRevoked(dataDir, 'old-secret-123') && !isRevoked(dataDir, 'new-secret-456'));
  assert.ok(!readFileSync(join(dataDir, 'server', 'token-revoked'), 'utf8').includes('old-secret-123'), 'only a hash is kept');
  assert.throws(() => ensureServerToken(dataDir, pki.caBundlePem(), first.token), /replaced by `skiff token rotate`/);
  assert.equal(ensureServerToken(dataDir, pki.caBundlePem()).password, 'new-secret-456', 'a restart without --token keeps the new one');
  assert.throws(() => rotateServerToken(dataDir, pki.caBundlePem(), 'new-secret-456', 'old-secret-123'), /revoked/);
});

test('a node\'s renewal request is a valid PKCS#10 request the kubelet-client signer accepts', () => {
  const { csrPem, keyPem } = newClientCsr('system:node:edge-1', ['system:nodes']);
  const parsed = parseCsr(csrPem);
  assert.equal(parsed.commonName, 'system:node:edge-1');
  assert.deepEqual(parsed.organizations, ['system:nodes']);
  assert.equal(kubeletClientRefusal(parsed, ['digital signature', 'client auth']), undefined);
  assert.match(keyPem, /^-----BEGIN EC PRIVATE KEY-----/);
});

test('a running server renews a leaf inside the window and serves it on new connections without a restart', async () => {
  const { startCertRenewal } = await import('../../src/server/cert-renewal.js');
  const { ensureServerPkiIsolated } = await import('../../src/pki/isolated.js');
  const dataDir = tempDir();
  const pkiOpts = { dataDir, sans: SANS };
  const { pkiFiles } = await import('../../src/pki/isolated.js');
  // What the server loaded at start: leaves with 30 days left.
  const current = pkiFiles(await ensureServerPki({ ...pkiOpts, now: aged }));
  const server = https.createServer({ cert: current.servingCertPem, key: current.servingKeyPem, ca: current.clientCaPem, requestCert: true, rejectUnauthorized: false },
    (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const served = () => new Promise<string>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/', ca: current.serverCaPem, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      resolve((res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!.validTo);
    });
    req.on('error', reject);
  });
  let kubeconfigs = 0;
  const { directFrontDoor } = await import('../../src/server/tls-front.js');
  const renewal = startCertRenewal({ pkiOpts, current, door: directFrontDoor(server), writeKubeconfig: () => { kubeconfigs++; }, intervalMs: 3_600_000 });
  try {
    const before = Date.parse(await served());
    assert.ok(before - Date.now() < 31 * DAY_MS);
    assert.equal(await renewal.check(), true);
    assert.ok(Date.parse(await served()) - Date.now() > 364 * DAY_MS, 'the renewed certificate is served');
    assert.equal(kubeconfigs, 1, 'the admin kubeconfig is rewritten');
    assert.equal(await renewal.check(), false, 'nothing left to renew');
    assert.equal((await ensureServerPkiIsolated(pkiOpts)).serverCaPem, current.serverCaPem, 'same CA');
  } finally {
    renewal.stop();
    server.close();
  }
});

test('rotate-ca with a service.key: the new key signs, tokens signed by the old one still verify (with --force they do not)', async () => {
  const { ServiceAccountTokens } = await import('../../src/apiserver/serviceaccount-tokens.js');
  const { generateKeyPairSync } = await import('node:crypto');
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const dataDir = tempDir();
  await ensureServerPki({ dataDir, sans: SANS });
  const before = ServiceAccountTokens.open(dataDir);
  const req = { namespace: 'default', serviceAccountName: 'app', serviceAccountUid: 'u1', expirationSeconds: 3600 };
  const oldToken = before.issue(req).token;
  const staged = join(tempDir(), 'sa-only');
  mkdirSync(staged);
  const fresh = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
  writeFileSync(join(staged, 'service.key'), fresh());
  const caBefore = tlsFile(dataDir, 'server-ca.crt');
  const r = await rotateCa({ dataDir, path: staged });
  assert.deepEqual(r.rotated, ['service-account-key']);
  assert.equal(tlsFile(dataDir, 'server-ca.crt'), caBefore, 'a service.key alone leaves the CAs');
  const after = ServiceAccountTokens.open(dataDir);
  assert.notEqual(after.keyId, before.keyId, 'the new key signs');
  assert.ok(after.verify(oldToken), 'a token of the old key still verifies');
  assert.ok(after.verify(after.issue(req).token));
  assert.equal(after.jwks().keys.length, 2);
  assert.equal(before.verify(after.issue(req).token), null);

  writeFileSync(join(staged, 'service.key'), fresh());
  await rotateCa({ dataDir, path: staged, force: true });
  const forced = ServiceAccountTokens.open(dataDir);
  assert.equal(forced.verify(oldToken), null, '--force drops the old keys');
  assert.equal(forced.jwks().keys.length, 1);
});

test('agent rotation: renews past its deadline or on a new CA bundle, adopting the bundle only with a new certificate', async () => {
  const { startClientCertRotation } = await import('../../src/agent/client-cert-rotation.js');
  const dataDir = tempDir();
  const pki = await ensureServerPki({ dataDir, sans: SANS });
  const issued = await pki.issueClientCert('system:node:edge-1', ['system:nodes']);
  const start = { nodeName: 'edge-1', nodePassword: 'p'.repeat(32), caPem: pki.serverCaPem, ...issued };
  let bundle = pki.serverCaPem;
  let failNext = false;
  const csrs: string[] = [];
  const used: string[] = [];
  const renewedCert = (await pki.issueClientCert('system:node:edge-1', ['system:nodes'])).certPem;
  const client = {
    async create(_ref: unknown, _ns: unknown, body: any) {
      if (failNext) { failNext = false; throw new Error('server busy'); }
      const parsed = parseCsr(Buffer.from(body.spec.request, 'base64').toString());
      assert.equal(parsed.commonName, 'system:node:edge-1');
      assert.equal(body.spec.signerName, 'kubernetes.io/kube-apiserver-client-kubelet');
      csrs.push(`csr-${csrs.length}`);
      return { metadata: { name: csrs.at(-1) } };
    },
    async get() { return { metadata: {}, status: { certificate: Buffer.from(renewedCert).toString('base64') } }; },
    useCredentials(c: { caPem: string }) { used.push(c.caPem); },
  };
  const path = join(dataDir, 'edge-1.json');
  const r = startClientCertRotation({ client: client as any, server: 'https://unused', nodeName: 'edge-1', credentialsPath: path, creds: start,
    jitter: 0, checkEveryMs: 3_600_000, pollMs: 1, fetchCaBundle: async () => bundle });
  try {
    const v = { notBefore: new X509Certificate(issued.certPem).validFrom, notAfter: new X509Certificate(issued.certPem).validTo };
    const deadline = Date.parse(v.notBefore) + 0.7 * (Date.parse(v.notAfter) - Date.parse(v.notBefore));
    assert.equal(await r.check(new Date(deadline - 60_000)), 'unchanged');
    assert.equal(csrs.length, 0);
    assert.equal(await r.check(new Date(deadline + 60_000)), 'renewed', 'past 70 % of the lifetime (jitter 0)');
    assert.equal(r.current().certPem, renewedCert);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).certPem, renewedCert, 'stored');

    bundle = pki.serverCaPem + (await ensureServerPki({ dataDir: tempDir(), sans: SANS })).serverCaPem;
    failNext = true;
    await assert.rejects(r.check(), /server busy/);
    assert.equal(r.current().caPem, pki.serverCaPem, 'the bundle is not adopted without a certificate');
    assert.equal(await r.check(), 'renewed', 'retried at the next check');
    assert.equal(r.current().caPem, bundle);
    assert.deepEqual(used.at(-1), bundle, 'the client switched');
    assert.equal(await r.check(), 'unchanged');
  } finally {
    r.stop();
  }
});
