// The server's certificates, laid out as k3s does under <data-dir>/server/tls: two CAs (one signs what the
// server presents, one signs client identities), the API serving certificate and the admin client
// certificate. Created on first start, reused afterwards; leaves are renewed when close to expiry or when the
// wanted SANs grew, so a yearly restart keeps a cluster alive (the most common k3s outage is expired certs).
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its algorithm table through tsyringe, which needs the Reflect metadata API
// loaded before the library's first import.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Logger } from '../util/log.js';
import { PUBLIC_MODE, readIfExists, SECRET_MODE, writeFileAtomic } from './pem-files.js';
import { AUTH_PROXY_USER } from './front-proxy.js';
import { DAY_MS, leafNeedsRenewal } from './renewal.js';
import { CROSS_SUFFIX, PREVIOUS_SUFFIX } from './ca-files.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const CA_DAYS = 3650;
const LEAF_DAYS = 365;
/** Certificates start slightly in the past so a node whose clock lags a little still accepts them. */
const BACKDATE_MS = 60 * 60 * 1000;

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Names every API serving certificate carries, whatever the flags say: in-cluster clients use them. */
const ALWAYS_DNS = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];
const ALWAYS_IPS = ['127.0.0.1', '::1'];
const SAN_OID = '2.5.29.17';

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

export type CsrUsage = 'client' | 'server';

export interface ServerPki {
  /** <dataDir>/server/tls */
  dir: string;
  serverCaPem: string;
  clientCaPem: string;
  servingCertPem: string;
  servingKeyPem: string;
  adminCertPem: string;
  adminKeyPem: string;
  /**
   * The front proxy (API aggregation): its own CA, as k3s's request-header-ca, published to extension
   * API servers as requestheader-client-ca-file, and the client certificate the server presents to
   * them (k3s's client-auth-proxy, CN system:auth-proxy) when it forwards a user's request.
   */
  requestHeaderCaPem: string;
  proxyClientCertPem: string;
  proxyClientKeyPem: string;
  /** What GET /cacerts serves, and what the join token's hash pins. */
  caBundlePem(): string;
  /** A client certificate from the client CA: CN is the user name, each group becomes an O value. */
  issueClientCert(cn: string, groups: string[], days?: number): Promise<IssuedCert>;
  /**
   * Signs a PKCS#10 request with the subject and public key it carries: `client` usage from the client CA,
   * `server` usage (kubelet serving certificates) from the server CA, keeping the request's SANs.
   */
  signCsr(csrPem: string, usage: CsrUsage, days?: number): Promise<string>;
}

export interface EnsureServerPkiOptions {
  dataDir: string;
  sans: { dns: string[]; ips: string[] };
  log?: Logger;
  /** The clock, for tests that check renewal. */
  now?: () => Date;
}

interface KeyPair {
  pem: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface Ca {
  cert: x509.X509Certificate;
  pem: string;
  key: KeyPair;
}

export async function ensureServerPki(opts: EnsureServerPkiOptions): Promise<ServerPki> {
  const dir = join(opts.dataDir, 'server', 'tls');
  const now = opts.now ?? (() => new Date());
  const log = opts.log;

  const serverCa = await ensureCa(dir, 'server-ca', 'skiff-server-ca', now(), log);
  const clientCa = await ensureCa(dir, 'client-ca', 'skiff-client-ca', now(), log);

  const sans = servingSans(opts.sans);
  const serving = await ensureLeaf(dir, 'serving-kube-apiserver', serverCa, now(), log, {
    cn: 'kube-apiserver', groups: [], usage: 'server', sans,
  });
  const admin = await ensureLeaf(dir, 'client-admin', clientCa, now(), log, {
    cn: 'system:admin', groups: ['system:masters'], usage: 'client',
  });

  // A separate CA: a certificate from the client CA must never be able to assert X-Remote-User.
  const requestHeaderCa = await ensureCa(dir, 'request-header-ca', 'skiff-request-header-ca', now(), log);
  const authProxy = await ensureLeaf(dir, 'client-auth-proxy', requestHeaderCa, now(), log, {
    cn: AUTH_PROXY_USER, groups: [], usage: 'client',
  });

  // During a CA rotation's overlap (see ca-rotation.ts) the previous CAs stay trusted: client
  // certificates from the old client CA still authenticate, /cacerts serves both server CAs, and the
  // serving certificate carries the new server CA cross-signed by the old one, so a node that trusts
  // only the old CA still verifies the server.
  const previous = (file: string) => readIfExists(join(dir, `${file}${PREVIOUS_SUFFIX}`));
  const cross = readIfExists(join(dir, `server-ca${CROSS_SUFFIX}`));
  const serverBundle = serverCa.pem + (previous('server-ca') ?? '');
  return {
    dir,
    serverCaPem: serverCa.pem,
    clientCaPem: clientCa.pem + (previous('client-ca') ?? ''),
    servingCertPem: serving.certPem + (cross ?? ''),
    servingKeyPem: serving.keyPem,
    adminCertPem: admin.certPem,
    adminKeyPem: admin.keyPem,
    requestHeaderCaPem: requestHeaderCa.pem,
    proxyClientCertPem: authProxy.certPem,
    proxyClientKeyPem: authProxy.keyPem,
    caBundlePem: () => serverBundle,
    issueClientCert: async (cn, groups, days = LEAF_DAYS) => {
      const key = await newKeyPair();
      const cert = await signLeaf(clientCa, key.publicKey, subjectName(cn, groups), now(), days, 'client');
      return { certPem: cert.toString('pem') + '\n', keyPem: key.pem };
    },
    signCsr: async (csrPem, usage, days = LEAF_DAYS) => {
      const csr = new x509.Pkcs10CertificateRequest(csrPem);
      if (!(await csr.verify())) throw new Error('certificate request signature does not verify');
      const sanExt = csr.getExtension(SAN_OID);
      const san = sanExt ? new x509.SubjectAlternativeNameExtension(sanExt.rawData) : undefined;
      const ca = usage === 'server' ? serverCa : clientCa;
      const cert = await signLeaf(ca, csr.publicKey, csr.subjectName, now(), days, usage, san);
      return cert.toString('pem') + '\n';
    },
  };
}

/** The serving certificate's wanted names: the caller's plus the fixed set, IPs in canonical form. */
function servingSans(given: { dns: string[]; ips: string[] }): { dns: string[]; ips: string[] } {
  const dns = new Set<string>();
  for (const d of [...ALWAYS_DNS, hostname(), ...given.dns]) if (d) dns.add(d.toLowerCase());
  const ips = new Set<string>();
  for (const ip of [...ALWAYS_IPS, ...given.ips]) if (ip) ips.add(canonicalIp(ip));
  return { dns: [...dns], ips: [...ips] };
}

function canonicalIp(ip: string): string {
  const kind = isIP(ip);
  if (kind === 0) throw new Error(`not an IP address: ${ip}`);
  // URL parsing compresses and lower-cases IPv6, so "0:0:0:0:0:0:0:1" and "::1" compare equal.
  return kind === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

export async function ensureCa(dir: string, file: string, cnPrefix: string, now: Date, log?: Logger): Promise<Ca> {
  const certPath = join(dir, `${file}.crt`);
  const keyPath = join(dir, `${file}.key`);
  const certPem = readIfExists(certPath);
  const keyPem = readIfExists(keyPath);
  if (certPem && keyPem) {
    return { cert: new x509.X509Certificate(certPem), pem: certPem, key: await loadKeyPair(keyPem) };
  }
  // A CA is never silently replaced while half of it exists: that would orphan every issued credential.
  if (certPem || keyPem) throw new Error(`${dir}: only one of ${file}.crt and ${file}.key exists; restore the other or remove both to create a new CA`);

  const fresh = await newCaPems(cnPrefix, now);
  const pem = fresh.certPem;
  writeFileAtomic(keyPath, fresh.keyPem, SECRET_MODE);
  writeFileAtomic(certPath, pem, PUBLIC_MODE);
  const cert = new x509.X509Certificate(pem);
  const key = await loadKeyPair(fresh.keyPem);
  log?.info({ file: certPath }, 'created certificate authority');
  return { cert, pem, key };
}

/** A CA from its PEMs (cert and key must belong together). */
export async function loadCa(certPem: string, keyPem: string): Promise<Ca> {
  const cert = new x509.X509Certificate(certPem);
  const key = await loadKeyPair(keyPem);
  if (!new NodeX509(certPem).checkPrivateKey(createPrivateKey(keyPem))) throw new Error('the CA key does not belong to the CA certificate');
  return { cert, pem: certPem, key };
}

/** A new self-signed CA's PEMs, not written anywhere (`skiff certificate rotate-ca` stages them). */
export async function newCaPems(cnPrefix: string, now: Date): Promise<{ certPem: string; keyPem: string }> {
  const key = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [`${cnPrefix}@${Math.floor(now.getTime() / 1000)}`] }],
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS),
    keys: { privateKey: key.privateKey, publicKey: key.publicKey },
    signingAlgorithm: SIGNING,
    extensions: await caExtensions(key.publicKey),
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: key.pem };
}

async function caExtensions(publicKey: CryptoKey | x509.PublicKey): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ];
}

/**
 * The new CA's subject and public key, issued by the old CA: a client that trusts only the old CA
 * verifies a chain leaf → cross-signed new CA → old CA, so nodes keep trusting the server while
 * they move to the new bundle. Valid as long as the old CA (a certificate never outlives its issuer).
 */
export async function crossSign(newCaCertPem: string, oldCa: Ca, now: Date): Promise<string> {
  const fresh = new x509.X509Certificate(newCaCertPem);
  const publicKey = await fresh.publicKey.export(EC_KEY, ['verify']);
  const notAfter = Math.min(fresh.notAfter.getTime(), oldCa.cert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: fresh.subjectName,
    issuer: oldCa.cert.subjectName,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey,
    signingKey: oldCa.key.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [...await caExtensions(publicKey), await x509.AuthorityKeyIdentifierExtension.create(oldCa.key.publicKey)],
  });
  return cert.toString('pem') + '\n';
}

export interface LeafSpec {
  cn: string;
  groups: string[];
  /** `peer`: both server and client authentication (etcd's peer and serving certificates). */
  usage: CsrUsage | 'peer';
  sans?: { dns: string[]; ips: string[] };
}

export async function ensureLeaf(dir: string, file: string, ca: Ca, now: Date, log: Logger | undefined, spec: LeafSpec): Promise<IssuedCert> {
  const certPath = join(dir, `${file}.crt`);
  const keyPath = join(dir, `${file}.key`);
  const certPem = readIfExists(certPath);
  const keyPem = readIfExists(keyPath);
  const why = certPem && keyPem ? reissueReason(certPem, keyPem, ca, now, spec) : 'missing';
  if (!why) return { certPem: certPem!, keyPem: keyPem! };

  // Keep an existing, usable key across renewals (k3s does too): pinned public keys stay valid.
  const key = keyPem && !KEY_PROBLEMS.has(why) ? await loadKeyPair(keyPem) : await newKeyPair();
  const san = spec.sans ? sanExtension(spec.sans) : undefined;
  const cert = await signLeaf(ca, key.publicKey, subjectName(spec.cn, spec.groups), now, LEAF_DAYS, spec.usage, san);
  const pem = cert.toString('pem') + '\n';
  writeFileAtomic(keyPath, key.pem, SECRET_MODE);
  writeFileAtomic(certPath, pem, PUBLIC_MODE);
  log?.info({ file: certPath, reason: why }, 'issued certificate');
  return { certPem: pem, keyPem: key.pem };
}

/** Reasons that also call for a new key, not just a new certificate. */
const KEY_PROBLEMS = new Set(['key mismatch', 'unreadable key']);

/** Why an existing leaf must be re-issued, or undefined when it is still good. */
function reissueReason(certPem: string, keyPem: string, ca: Ca, now: Date, spec: LeafSpec): string | undefined {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return 'unreadable key';
  }
  if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return 'unreadable key';
  let cert: NodeX509;
  try {
    cert = new NodeX509(certPem);
  } catch {
    return 'unreadable certificate';
  }
  if (!cert.checkPrivateKey(key)) return 'key mismatch';
  if (!cert.verify(createPublicKey(ca.key.pem))) return 'issued by another CA';
  if (leafNeedsRenewal({ notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) }, now)) return 'expires soon';
  if (spec.sans) {
    const have = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension);
    const names = new Set((have?.names.items ?? []).map((n) => (n.type === 'ip' ? `ip:${canonicalIp(n.value)}` : `${n.type}:${n.value.toLowerCase()}`)));
    const missing = [...spec.sans.dns.map((d) => `dns:${d}`), ...spec.sans.ips.map((i) => `ip:${i}`)].filter((n) => !names.has(n));
    if (missing.length) return `new SANs ${missing.join(',')}`;
  }
  return undefined;
}

function subjectName(cn: string, groups: string[]): x509.JsonName {
  // JSON names, not a DN string: a user or group name may contain commas or '='.
  const name: x509.JsonName = [{ CN: [cn] }];
  for (const g of groups) name.push({ O: [g] });
  return name;
}

function sanExtension(sans: { dns: string[]; ips: string[] }): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension([
    ...sans.dns.map((value) => ({ type: 'dns' as const, value })),
    ...sans.ips.map((value) => ({ type: 'ip' as const, value })),
  ]);
}

async function signLeaf(ca: Ca, publicKey: CryptoKey | x509.PublicKey, subject: x509.JsonName | x509.Name, now: Date, days: number,
  usage: CsrUsage | 'peer', san?: x509.SubjectAlternativeNameExtension): Promise<x509.X509Certificate> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usage === 'peer' ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : [usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.AuthorityKeyIdentifierExtension.create(ca.key.publicKey),
  ];
  if (san) extensions.push(san);
  // Never outlive the CA: a chain with a leaf past its issuer fails validation in some clients.
  const notAfter = Math.min(now.getTime() + days * DAY_MS, ca.cert.notAfter.getTime());
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: ca.cert.subjectName,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey,
    signingKey: ca.key.privateKey,
    signingAlgorithm: SIGNING,
    extensions,
  });
}

/** 128 random bits with the top bit clear, so the DER integer stays positive. */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function newKeyPair(): Promise<KeyPair> {
  const pair = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
  // Stored as SEC1 ("EC PRIVATE KEY"), the form k3s and kubeadm write and every TLS stack reads.
  const pem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'sec1', format: 'pem' }) as string;
  return { pem, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

async function loadKeyPair(pem: string): Promise<KeyPair> {
  const node = createPrivateKey(pem);
  if (node.asymmetricKeyType !== 'ec' || node.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('expected an EC P-256 private key');
  }
  const pkcs8 = node.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(node).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, EC_KEY, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, EC_KEY, true, ['verify']);
  return { pem, privateKey, publicKey };
}

/**
 * A throwaway self-signed serving certificate (not stored): what a TLS endpoint presents when it has
 * no certificate for the name asked (the ingress proxy's fallback, as Traefik's "TRAEFIK DEFAULT CERT").
 * `rsa`: an RSA 2048 key instead of P-256 (Node keeps a server's default certificate in its key-type
 * slot when an SNI callback installs another one, so a default of the other type can shadow it).
 */
export async function selfSignedServingCert(cn: string, o: { days?: number; rsa?: boolean } = {}): Promise<{ certPem: string; keyPem: string }> {
  const now = Date.now();
  const rsaAlg = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;
  const pair = o.rsa
    ? (await webcrypto.subtle.generateKey(rsaAlg, true, ['sign', 'verify'])) as CryptoKeyPair
    : undefined;
  const key = pair
    ? { privateKey: pair.privateKey, publicKey: pair.publicKey,
      pem: createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey)), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string }
    : await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [cn] }],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (o.days ?? LEAF_DAYS) * DAY_MS),
    keys: { privateKey: key.privateKey, publicKey: key.publicKey },
    signingAlgorithm: o.rsa ? rsaAlg : SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: cn }]),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: key.pem };
}
