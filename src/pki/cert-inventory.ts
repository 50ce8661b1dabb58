// The certificates of one data dir, by the service names k3s uses (`k3s certificate rotate --service`):
// what `skiff certificate check` lists and `skiff certificate rotate` renews. node:crypto only.
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join, relative } from 'node:path';
import { certStatus, residual, validityOf, type CertStatus } from './renewal.js';
import { CROSS_SUFFIX, PREVIOUS_SUFFIX } from './ca-files.js';
import { writeFileAtomic, SECRET_MODE } from './pem-files.js';

/** Service name → leaf files (without .crt/.key) under server/tls; `kubelet` is the node credentials. */
export const SERVICES: Record<string, string[]> = {
  admin: ['client-admin'],
  'api-server': ['serving-kube-apiserver'],
  'auth-proxy': ['client-auth-proxy'],
  etcd: ['etcd/server-client', 'etcd/peer-server-client', 'etcd/client'],
  kubelet: [],
};

/**
 * k3s services skiff has no certificate of its own for (its control loops run inside the server, the
 * service proxy inside the agent): accepted by `rotate` so k3s scripts run unchanged, and reported.
 */
export const K3S_ONLY_SERVICES = ['controller-manager', 'scheduler', 'k3s-controller', 'k3s-server', 'cloud-controller', 'kube-proxy'];

export interface CertRow {
  /** Path relative to the data dir. */
  file: string;
  service: string;
  subject: string;
  usages: string;
  notAfter: Date;
  residual: string;
  status: CertStatus;
  ca: boolean;
}

function tlsDir(dataDir: string): string {
  return join(dataDir, 'server', 'tls');
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function serviceOf(rel: string): string {
  for (const [svc, files] of Object.entries(SERVICES)) if (files.includes(rel)) return svc;
  return '';
}

function usagesOf(c: X509Certificate): string {
  if (c.ca) return 'CertSign';
  const eku = c.keyUsage ?? [];
  const names = eku.map((o) => (o === '1.3.6.1.5.5.7.3.1' ? 'ServerAuth' : o === '1.3.6.1.5.5.7.3.2' ? 'ClientAuth' : o));
  return names.join(',');
}

function row(dataDir: string, path: string, pem: string, service: string, now: Date): CertRow {
  const c = new X509Certificate(pem);
  const v = validityOf(pem);
  return {
    file: relative(dataDir, path), service, subject: c.subject.replace(/\n/g, ','), usages: usagesOf(c),
    notAfter: v.notAfter, residual: residual(v, now), status: certStatus(v, now), ca: c.ca,
  };
}

/** Every certificate of the server's PKI and of this data dir's nodes (agent and hollow). */
export function listCertificates(dataDir: string, now = new Date()): CertRow[] {
  const rows: CertRow[] = [];
  const tls = tlsDir(dataDir);
  for (const path of walk(tls)) {
    if (!path.endsWith('.crt')) continue;
    const rel = relative(tls, path).slice(0, -'.crt'.length);
    try {
      rows.push(row(dataDir, path, readFileSync(path, 'utf8'), serviceOf(rel), now));
    } catch { /* not a certificate: skipped */ }
  }
  for (const path of nodeCredentialFiles(dataDir)) {
    try {
      const creds = JSON.parse(readFileSync(path, 'utf8')) as { certPem?: string };
      if (creds.certPem) rows.push(row(dataDir, path, creds.certPem, 'kubelet', now));
    } catch { /* unreadable: skipped */ }
  }
  return rows;
}

function nodeCredentialFiles(dataDir: string): string[] {
  return [join(dataDir, 'agent', 'credentials'), join(dataDir, 'hollow', 'nodes')]
    .flatMap((d) => walk(d).filter((p) => p.endsWith('.json')));
}

/** k3s's `certificate check --output table` columns. */
export function formatTable(rows: CertRow[]): string {
  const head = ['FILENAME', 'SUBJECT', 'USAGES', 'EXPIRES', 'RESIDUAL TIME', 'STATUS'];
  const cells = rows.map((r) => [r.file, r.subject, r.usages, r.notAfter.toISOString(), r.residual, r.status]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), ...cells.map(line)].join('\n') + '\n';
}

/** One line per certificate, the text form. */
export function formatText(rows: CertRow[]): string {
  return rows.map((r) => `${r.file}: ${r.subject} expires ${r.notAfter.toISOString()} (${r.residual}), ${r.status}`).join('\n') + '\n';
}

export interface RotateResult {
  backupDir: string;
  /** k3s service names given that have no certificate in skiff. */
  ignored: string[];
  /** Files (relative to the data dir) removed or rewritten, to be issued anew at the next start. */
  rotated: string[];
}

/**
 * `skiff certificate rotate`: copies server/tls to server/tls-<unix time> and removes the named
 * services' leaves (all when `services` is empty), keys included, so the next start issues new ones
 * with new keys from the same CAs. The node credentials (`kubelet`) keep their node password: only
 * the certificate is dropped, and the node rejoins at its next start.
 */
export function rotateLeaves(dataDir: string, services: string[], now = new Date()): RotateResult {
  const ignored = services.filter((s) => K3S_ONLY_SERVICES.includes(s));
  const unknown = services.filter((s) => !(s in SERVICES) && !ignored.includes(s));
  if (unknown.length) throw new Error(`unknown service ${unknown.join(', ')}: choose from ${Object.keys(SERVICES).join(', ')}`);
  if (ignored.length && ignored.length === services.length) return { backupDir: '', ignored, rotated: [] };
  const tls = tlsDir(dataDir);
  if (!existsSync(tls)) throw new Error(`no certificates at ${tls}: has a server been started with --data-dir ${dataDir}?`);
  const backupDir = join(dataDir, 'server', `tls-${Math.floor(now.getTime() / 1000)}`);
  cpSync(tls, backupDir, { recursive: true, preserveTimestamps: true });
  const wanted = services.length ? services.filter((s) => s in SERVICES) : Object.keys(SERVICES);
  const rotated: string[] = [];
  for (const svc of wanted) {
    for (const f of SERVICES[svc]) {
      for (const ext of ['.crt', '.key']) {
        const p = join(tls, f + ext);
        if (existsSync(p)) { rmSync(p); rotated.push(relative(dataDir, p)); }
      }
    }
    if (svc === 'kubelet') {
      for (const path of nodeCredentialFiles(dataDir)) {
        const creds = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
        cpSync(path, join(backupDir, 'nodes', relative(dataDir, path)));
        delete creds.certPem;
        delete creds.keyPem;
        writeFileAtomic(path, JSON.stringify(creds) + '\n', SECRET_MODE);
        rotated.push(relative(dataDir, path));
      }
    }
  }
  return { backupDir, ignored, rotated };
}

/** Whether a CA rotation's overlap is in place (previous CAs still trusted). */
export function caOverlapFiles(dataDir: string): string[] {
  return walk(tlsDir(dataDir)).filter((p) => p.endsWith(PREVIOUS_SUFFIX) || p.endsWith(CROSS_SUFFIX)).map((p) => relative(dataDir, p));
}
