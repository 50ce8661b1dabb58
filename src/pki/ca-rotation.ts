// `skiff certificate rotate-ca`: replaces the cluster's CAs (server, client, request-header) on a
// stopped server with new ones, with an overlap so already-joined nodes keep working:
// - the previous CAs are kept as <ca>.previous.crt and stay trusted: client certificates from the
//   old client CA still authenticate, and /cacerts serves the new and the old server CA;
// - the new server CA is cross-signed by the old one (server-ca.cross.crt) and sent in the serving
//   chain, so a node that trusts only the old CA still verifies the server;
// - every leaf is reissued from the new CAs at the next start (certs.ts: "issued by another CA").
// A service.key in the folder replaces the ServiceAccount signing key; the keys in use are appended
// after it (k3s's layout: the first key signs, all verify), so tokens already issued stay valid.
// `--force` skips the overlap (nothing cross-signed, the old CAs are dropped at once: every node must
// rejoin with the new token). `finishCaRotation` ends the overlap once every node has the new bundle.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crossSign, loadCa, newCaPems } from './certs.js';
import { CROSS_SUFFIX, PREVIOUS_SUFFIX, REQUIRED_CAS, ROTATABLE_CAS } from './ca-files.js';
import { privateKeyPems, PUBLIC_MODE, readIfExists, SECRET_MODE, writeFileAtomic } from './pem-files.js';

const CN_PREFIX: Record<string, string> = {
  'server-ca': 'skiff-server-ca', 'client-ca': 'skiff-client-ca', 'request-header-ca': 'skiff-request-header-ca',
};

export interface RotateCaOptions {
  dataDir: string;
  /** Folder with the new <ca>.crt/.key files; when it holds none, new CAs are generated into it. */
  path: string;
  force?: boolean;
  now?: Date;
}

export interface RotateCaResult {
  generated: boolean;
  backupDir: string;
  rotated: string[];
  overlap: boolean;
}

export async function rotateCa(o: RotateCaOptions): Promise<RotateCaResult> {
  const now = o.now ?? new Date();
  const tls = join(o.dataDir, 'server', 'tls');
  for (const ca of REQUIRED_CAS) {
    if (!existsSync(join(tls, `${ca}.crt`)) || !existsSync(join(tls, `${ca}.key`))) {
      throw new Error(`no ${ca} at ${tls}: has a server been started with --data-dir ${o.dataDir}?`);
    }
  }
  const pending = ROTATABLE_CAS.filter((ca) => existsSync(join(tls, `${ca}${PREVIOUS_SUFFIX}`)));
  if (pending.length && !o.force) {
    throw new Error('a previous CA rotation is still in its overlap: run `skiff certificate rotate-ca --finish` once every node has the new CA, or give --force');
  }

  let generated = false;
  const serviceKey = readIfExists(join(o.path, SERVICE_KEY));
  if (!ROTATABLE_CAS.some((ca) => existsSync(join(o.path, `${ca}.crt`))) && serviceKey === undefined) {
    mkdirSync(o.path, { recursive: true, mode: 0o700 });
    for (const ca of ROTATABLE_CAS) {
      const pems = await newCaPems(CN_PREFIX[ca], now);
      writeFileAtomic(join(o.path, `${ca}.key`), pems.keyPem, SECRET_MODE);
      writeFileAtomic(join(o.path, `${ca}.crt`), pems.certPem, PUBLIC_MODE);
    }
    generated = true;
  }

  // Check everything before changing anything.
  const anyCa = ROTATABLE_CAS.some((ca) => existsSync(join(o.path, `${ca}.crt`)) || existsSync(join(o.path, `${ca}.key`)));
  const incoming: { ca: string; certPem: string; keyPem: string }[] = [];
  for (const ca of ROTATABLE_CAS) {
    const certPem = readIfExists(join(o.path, `${ca}.crt`));
    const keyPem = readIfExists(join(o.path, `${ca}.key`));
    // A folder with only a service.key rotates that key alone; one with CAs must have the required ones.
    if (!certPem && !keyPem && (!(REQUIRED_CAS as readonly string[]).includes(ca) || !anyCa)) continue;
    if (!certPem || !keyPem) throw new Error(`${o.path}: ${ca}.crt and ${ca}.key are both needed`);
    checkNewCa(ca, certPem, now);
    await loadCa(certPem, keyPem).catch((e: Error) => { throw new Error(`${o.path}/${ca}: ${e.message}`); });
    if (readIfExists(join(tls, `${ca}.crt`)) === certPem) throw new Error(`${o.path}/${ca}.crt is the CA already in use`);
    incoming.push({ ca, certPem, keyPem });
  }

  const newServiceKey = serviceKey === undefined ? undefined : serviceKeyFile(serviceKey, readIfExists(join(tls, SERVICE_KEY)), o.force ?? false);

  const backupDir = join(o.dataDir, 'server', `tls-${Math.floor(now.getTime() / 1000)}`);
  cpSync(tls, backupDir, { recursive: true, preserveTimestamps: true });
  const rotated: string[] = [];
  for (const { ca, certPem, keyPem } of incoming) {
    const oldCertPem = readIfExists(join(tls, `${ca}.crt`))!;
    const oldKeyPem = readIfExists(join(tls, `${ca}.key`))!;
    rmSync(join(tls, `${ca}${PREVIOUS_SUFFIX}`), { force: true });
    rmSync(join(tls, `${ca}${CROSS_SUFFIX}`), { force: true });
    if (!o.force) {
      writeFileAtomic(join(tls, `${ca}${PREVIOUS_SUFFIX}`), oldCertPem, PUBLIC_MODE);
      if (ca === 'server-ca') {
        const cross = await crossSign(certPem, await loadCa(oldCertPem, oldKeyPem), now);
        writeFileAtomic(join(tls, `${ca}${CROSS_SUFFIX}`), cross, PUBLIC_MODE);
      }
    }
    writeFileAtomic(join(tls, `${ca}.key`), keyPem, SECRET_MODE);
    writeFileAtomic(join(tls, `${ca}.crt`), certPem, PUBLIC_MODE);
    rotated.push(ca);
  }
  if (newServiceKey !== undefined) {
    writeFileAtomic(join(tls, SERVICE_KEY), newServiceKey, SECRET_MODE);
    rotated.push('service-account-key');
  }
  return { generated, backupDir, rotated, overlap: !o.force };
}

const SERVICE_KEY = 'service.key';

function publicDer(pem: string): string {
  return createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' }).toString('base64');
}

/**
 * The service.key to install: the given keys (the first signs) followed, unless `force`, by the keys
 * in use that it lacks, so every token issued so far still verifies.
 */
function serviceKeyFile(given: string, current: string | undefined, force: boolean): string {
  const keys = privateKeyPems(given);
  if (!keys.length) throw new Error(`${SERVICE_KEY} holds no private key`);
  for (const k of keys) {
    let key;
    try { key = createPrivateKey(k); } catch { throw new Error(`${SERVICE_KEY}: a key cannot be read`); }
    if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error(`${SERVICE_KEY}: service account keys must be EC P-256 (ES256)`);
  }
  const norm = (k: string) => (k.endsWith('\n') ? k : `${k}\n`);
  const out = keys.map(norm);
  if (!force && current) {
    const have = new Set(keys.map(publicDer));
    for (const k of privateKeyPems(current)) if (!have.has(publicDer(k))) out.push(norm(k));
  }
  return out.join('');
}

function checkNewCa(ca: string, certPem: string, now: Date): void {
  let c: X509Certificate;
  try {
    c = new X509Certificate(certPem);
  } catch {
    throw new Error(`${ca}.crt is not a PEM certificate`);
  }
  if (!c.ca) throw new Error(`${ca}.crt is not a CA certificate (basicConstraints CA:TRUE)`);
  if (now.getTime() < Date.parse(c.validFrom) || now.getTime() >= Date.parse(c.validTo)) {
    throw new Error(`${ca}.crt is not valid now (${c.validFrom} to ${c.validTo})`);
  }
}

/** Ends the overlap: the previous CAs are no longer trusted, the cross-signed certificate is dropped. */
export function finishCaRotation(dataDir: string): string[] {
  const tls = join(dataDir, 'server', 'tls');
  const removed: string[] = [];
  for (const ca of ROTATABLE_CAS) {
    for (const suffix of [PREVIOUS_SUFFIX, CROSS_SUFFIX]) {
      const p = join(tls, `${ca}${suffix}`);
      if (existsSync(p)) { rmSync(p); removed.push(`${ca}${suffix}`); }
    }
  }
  return removed;
}
