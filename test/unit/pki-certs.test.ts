import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ensureServerPki } from '../../src/pki/certs.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-pki-'));
  dirs.push(d);
  return d;
}

const SANS = { dns: ['skiff.example'], ips: ['10.1.2.3'] };
const tls = (dataDir: string, f: string) => readFileSync(join(dataDir, 'server', 'tls', f), 'utf8');

// How long a first start takes (CAs and certificates included) is measured by bench/api.ts ("start").
test('first start creates both CAs, the serving and the admin certificate, with private keys 0600', async () => {
  const dataDir = tempDir();
  const pki = await ensureServerPki({ dataDir, sans: SANS });

  for (const f of ['server-ca', 'client-ca', 'serving-kube-apiserver', 'client-admin']) {
    assert.equal(statSync(join(pki.dir, `${f}.key`)).mode & 0o777, 0o600, `${f}.key mode`);
    assert.match(tls(dataDir, `${f}.crt`), /^-----BEGIN CERTIFICATE-----/);
  }
  assert.equal(pki.caBundlePem(), pki.serverCaPem);
  assert.equal(pki.serverCaPem, tls(dataDir, 'server-ca.crt'));

  const serverCa = new X509Certificate(pki.serverCaPem);
  const clientCa = new X509Certificate(pki.clientCaPem);
  assert.ok(serverCa.ca && clientCa.ca);
  assert.notEqual(serverCa.fingerprint256, clientCa.fingerprint256);
  const caYears = (Date.parse(serverCa.validTo) - Date.now()) / (365 * 86_400_000);
  assert.ok(caYears > 9.9 && caYears < 10.1, `CA lifetime ${caYears} years`);

  const serving = new X509Certificate(pki.servingCertPem);
  assert.ok(serving.verify(serverCa.publicKey), 'serving cert is signed by the server CA');
  assert.ok(!serving.ca);
  const days = (Date.parse(serving.validTo) - Date.now()) / 86_400_000;
  assert.ok(days > 364 && days < 366, `leaf lifetime ${days} days`);
  for (const name of ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'skiff.example']) {
    assert.ok(serving.checkHost(name), `serving cert covers ${name}`);
  }
  for (const ip of ['127.0.0.1', '::1', '10.1.2.3']) assert.ok(serving.checkIP(ip), `serving cert covers ${ip}`);
  assert.equal(serving.checkHost('other.example'), undefined);
  assert.ok(serving.checkPrivateKey(createPrivateKey(pki.servingKeyPem)));

  const admin = new X509Certificate(pki.adminCertPem);
  assert.ok(admin.verify(clientCa.publicKey), 'admin cert is signed by the client CA');
  assert.equal(admin.subject, 'CN=system:admin\nO=system:masters');
  assert.deepEqual(admin.keyUsage, ['1.3.6.1.5.5.7.3.2']);
});

test('a restart reuses every file byte for byte', async () => {
  const dataDir = tempDir();
  const first = await ensureServerPki({ dataDir, sans: SANS });
  const second = await ensureServerPki({ dataDir, sans: SANS });
  assert.equal(second.serverCaPem, first.serverCaPem);
  assert.equal(second.clientCaPem, first.clientCaPem);
  assert.equal(second.servingCertPem, first.servingCertPem);
  assert.equal(second.adminCertPem, first.adminCertPem);
  assert.equal(second.adminKeyPem, first.adminKeyPem);
});

test('a new SAN re-issues only the serving certificate, keeping its key and the CA', async () => {
  const dataDir = tempDir();
  const first = await ensureServerPki({ dataDir, sans: SANS });
  const second = await ensureServerPki({ dataDir, sans: { dns: [...SANS.dns, 'new.example'], ips: [...SANS.ips, 'fd00::7'] } });
  assert.equal(second.serverCaPem, first.serverCaPem);
  assert.equal(second.adminCertPem, first.adminCertPem);
  assert.notEqual(second.servingCertPem, first.servingCertPem);
  assert.equal(second.servingKeyPem, first.servingKeyPem);
  const serving = new X509Certificate(second.servingCertPem);
  assert.ok(serving.checkHost('new.example'));
  assert.ok(serving.checkIP('fd00:0:0:0:0:0:0:7'));
  assert.equal(tls(dataDir, 'serving-kube-apiserver.crt'), second.servingCertPem);
  // Dropping a SAN again is no reason to re-issue (a superset is fine), and IPv6 spelling does not matter.
  const third = await ensureServerPki({ dataDir, sans: { dns: [], ips: ['fd00:0:0:0:0:0:0:7'] } });
  assert.equal(third.servingCertPem, second.servingCertPem);
});

test('leaves within 120 days of expiry are renewed at start; the CAs are kept', async () => {
  const dataDir = tempDir();
  const first = await ensureServerPki({ dataDir, sans: SANS });
  const at = (days: number) => () => new Date(Date.now() + days * 86_400_000);
  const stillGood = await ensureServerPki({ dataDir, sans: SANS, now: at(200) });
  assert.equal(stillGood.adminCertPem, first.adminCertPem);
  const renewed = await ensureServerPki({ dataDir, sans: SANS, now: at(250) });
  assert.equal(renewed.serverCaPem, first.serverCaPem);
  assert.notEqual(renewed.adminCertPem, first.adminCertPem);
  assert.notEqual(renewed.servingCertPem, first.servingCertPem);
  const validTo = Date.parse(new X509Certificate(renewed.adminCertPem).validTo);
  assert.ok(validTo > Date.now() + 600 * 86_400_000, 'renewed from the (simulated) current time');
});

test('a leaf signed by a replaced CA is re-issued; half a CA is an error, not a silent new CA', async () => {
  const dataDir = tempDir();
  const first = await ensureServerPki({ dataDir, sans: SANS });
  for (const f of ['client-ca.crt', 'client-ca.key']) unlinkSync(join(first.dir, f));
  const second = await ensureServerPki({ dataDir, sans: SANS });
  assert.notEqual(second.clientCaPem, first.clientCaPem);
  assert.ok(new X509Certificate(second.adminCertPem).verify(new X509Certificate(second.clientCaPem).publicKey));

  unlinkSync(join(first.dir, 'server-ca.key'));
  await assert.rejects(ensureServerPki({ dataDir, sans: SANS }), /only one of server-ca\.crt and server-ca\.key/);
});

test('issueClientCert gives node credentials from the client CA; signCsr keeps the requested subject', async () => {
  const dataDir = tempDir();
  const pki = await ensureServerPki({ dataDir, sans: SANS });
  const clientCa = new X509Certificate(pki.clientCaPem);

  const node = await pki.issueClientCert('system:node:n1', ['system:nodes'], 30);
  const cert = new X509Certificate(node.certPem);
  assert.ok(cert.verify(clientCa.publicKey));
  assert.equal(cert.subject, 'CN=system:node:n1\nO=system:nodes');
  assert.ok(cert.checkPrivateKey(createPrivateKey(node.keyPem)));
  const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
  assert.ok(days > 29 && days < 31);

  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: ['system:node:n2'] }, { O: ['system:nodes'] }],
    keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'n2' }, { type: 'ip', value: '10.0.0.2' }])],
  });
  const signed = new X509Certificate(await pki.signCsr(csr.toString('pem'), 'server'));
  assert.ok(signed.verify(new X509Certificate(pki.serverCaPem).publicKey), 'serving CSRs are signed by the server CA');
  assert.equal(signed.subject, 'CN=system:node:n2\nO=system:nodes');
  assert.ok(signed.checkHost('n2'));
  assert.ok(signed.checkIP('10.0.0.2'));
  assert.deepEqual(signed.keyUsage, ['1.3.6.1.5.5.7.3.1']);

  const tampered = csr.toString('pem').replace(/(\n[A-Za-z0-9+/]{10})[A-Za-z0-9+/]/, (_m, a: string) => `${a}${a.endsWith('A') ? 'B' : 'A'}`);
  await assert.rejects(pki.signCsr(tampered, 'client'));
});

test('a corrupted leaf certificate or key is replaced rather than served', async () => {
  const dataDir = tempDir();
  const first = await ensureServerPki({ dataDir, sans: SANS });
  writeFileSync(join(first.dir, 'client-admin.crt'), 'garbage');
  const second = await ensureServerPki({ dataDir, sans: SANS });
  assert.match(second.adminCertPem, /^-----BEGIN CERTIFICATE-----/);
  assert.equal(second.adminKeyPem, first.adminKeyPem);

  writeFileSync(join(first.dir, 'client-admin.key'), 'not a key');
  const third = await ensureServerPki({ dataDir, sans: SANS });
  assert.notEqual(third.adminKeyPem, first.adminKeyPem);
  assert.ok(new X509Certificate(third.adminCertPem).checkPrivateKey(createPrivateKey(third.adminKeyPem)));
});
