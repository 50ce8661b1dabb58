// The embedded etcd's certificates, laid out as k3s does under <data-dir>/server/tls/etcd: a CA for
// etcd's client port (server-ca) and one for its peer port (peer-ca); etcd's serving certificate
// (server-client), its peer certificate (peer-server-client, used both ways between members) and the
// API server's client certificate for etcd (client). Every member of a cluster shares the two CAs
// (a joining server receives them from the first), and issues its own leaves.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCa, ensureLeaf } from './certs.js';
import { readIfExists, PUBLIC_MODE, SECRET_MODE, writeFileAtomic } from './pem-files.js';

export interface EtcdPkiFiles {
  dir: string;
  serverCa: string;
  peerCa: string;
  serverCert: string;
  serverKey: string;
  peerCert: string;
  peerKey: string;
  clientCert: string;
  clientKey: string;
}

/** The two CAs as PEM texts (what a joining member needs to issue its own certificates). */
export interface EtcdCas {
  serverCaCert: string;
  serverCaKey: string;
  peerCaCert: string;
  peerCaKey: string;
}

export function etcdTlsDir(dataDir: string): string {
  return join(dataDir, 'server', 'tls', 'etcd');
}

/** Reads the two CAs (after ensureEtcdPki). */
export function readEtcdCas(dataDir: string): EtcdCas {
  const dir = etcdTlsDir(dataDir);
  const r = (f: string) => {
    const s = readIfExists(join(dir, f));
    if (!s) throw new Error(`${join(dir, f)} is missing`);
    return s;
  };
  return { serverCaCert: r('server-ca.crt'), serverCaKey: r('server-ca.key'), peerCaCert: r('peer-ca.crt'), peerCaKey: r('peer-ca.key') };
}

/** Installs the cluster's CAs on a joining member; refuses to replace different ones already here. */
export function installEtcdCas(dataDir: string, cas: EtcdCas): void {
  const dir = etcdTlsDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: [string, string, number][] = [
    ['server-ca.crt', cas.serverCaCert, PUBLIC_MODE], ['server-ca.key', cas.serverCaKey, SECRET_MODE],
    ['peer-ca.crt', cas.peerCaCert, PUBLIC_MODE], ['peer-ca.key', cas.peerCaKey, SECRET_MODE],
  ];
  for (const [f, pem, mode] of files) {
    const have = readIfExists(join(dir, f));
    if (have !== undefined && have !== pem) throw new Error(`${join(dir, f)} belongs to another etcd cluster: remove ${dir} (and server/db/etcd) to join this one`);
    if (have === undefined) writeFileAtomic(join(dir, f), pem, mode);
  }
}

/** Creates (or reuses) the etcd CAs and this member's leaves; `sans` are the addresses etcd listens on. */
export async function ensureEtcdPki(dataDir: string, sans: { dns: string[]; ips: string[] }): Promise<EtcdPkiFiles> {
  const dir = etcdTlsDir(dataDir);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = new Date();
  const serverCa = await ensureCa(dir, 'server-ca', 'etcd-server-ca', now);
  const peerCa = await ensureCa(dir, 'peer-ca', 'etcd-peer-ca', now);
  await ensureLeaf(dir, 'server-client', serverCa, now, undefined, { cn: 'etcd-server', groups: [], usage: 'peer', sans });
  await ensureLeaf(dir, 'peer-server-client', peerCa, now, undefined, { cn: 'etcd-peer', groups: [], usage: 'peer', sans });
  await ensureLeaf(dir, 'client', serverCa, now, undefined, { cn: 'etcd-client', groups: [], usage: 'client' });
  const p = (f: string) => join(dir, f);
  return {
    dir, serverCa: p('server-ca.crt'), peerCa: p('peer-ca.crt'),
    serverCert: p('server-client.crt'), serverKey: p('server-client.key'),
    peerCert: p('peer-server-client.crt'), peerKey: p('peer-server-client.key'),
    clientCert: p('client.crt'), clientKey: p('client.key'),
  };
}
