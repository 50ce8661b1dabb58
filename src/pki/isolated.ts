// The server's PKI operations, each run in a short-lived worker thread (pki-worker.ts) so the X.509
// libraries never stay loaded in the long-running server (idle memory is a headline figure on small
// boards). Same files, same results as calling certs.ts directly.
import { Worker } from 'node:worker_threads';
import type { CsrUsage, EnsureServerPkiOptions, IssuedCert, ServerPki } from './certs.js';
import type { PkiJob } from './pki-worker.js';

/** The PEMs of a ServerPki (plain data, so it can cross the thread boundary). */
export type ServerPkiFiles = Omit<ServerPki, 'caBundlePem' | 'issueClientCert' | 'signCsr'> & { caBundle: string };

/** What crosses the thread boundary: the PEMs (the CA keys stay on disk and in the worker). */
export function pkiFiles(pki: ServerPki): ServerPkiFiles {
  return {
    dir: pki.dir, serverCaPem: pki.serverCaPem, clientCaPem: pki.clientCaPem, servingCertPem: pki.servingCertPem,
    servingKeyPem: pki.servingKeyPem, adminCertPem: pki.adminCertPem, adminKeyPem: pki.adminKeyPem, caBundle: pki.caBundlePem(),
  };
}

/**
 * At most this many PKI workers at once: each loads the X.509 stack (~20 MB), so a burst of
 * certificate requests (nodes joining, CSRs approved together) queues instead of multiplying it.
 */
const MAX_WORKERS = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function runJob<T>(job: PkiJob): Promise<T> {
  if (running >= MAX_WORKERS) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await runJobNow<T>(job);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

async function runJobNow<T>(job: PkiJob): Promise<T> {
  // Run from source (tests under tsx, where workers cannot load .ts): the same job, in process.
  if (import.meta.url.endsWith('.ts')) {
    const { ensureServerPki } = await import('./certs.js');
    const pki = await ensureServerPki(job.opts);
    if (job.op === 'issue') return await pki.issueClientCert(job.cn, job.groups, job.days) as T;
    if (job.op === 'sign') return await pki.signCsr(job.csrPem, job.usage, job.days) as T;
    return pkiFiles(pki) as T;
  }
  const worker = new Worker(new URL('./pki-worker.js', import.meta.url), { workerData: job });
  return new Promise<T>((resolve, reject) => {
    worker.once('message', (m: { ok: boolean; result?: T; error?: string }) => {
      if (m.ok) resolve(m.result as T); else reject(new Error(m.error));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`PKI worker exited with code ${code}`)); });
  });
}

type Opts = Omit<EnsureServerPkiOptions, 'log' | 'now'>;

export function ensureServerPkiIsolated(opts: Opts): Promise<ServerPkiFiles> {
  return runJob({ op: 'ensure', opts });
}

export function issueClientCertIsolated(opts: Opts, cn: string, groups: string[], days?: number): Promise<IssuedCert> {
  return runJob({ op: 'issue', opts, cn, groups, days });
}

/**
 * Signs a PKCS#10 request for `seconds` (fractional days are fine): `client` from the client CA, `server`
 * from the server CA. Returns the certificate PEM.
 */
export function signCsrIsolated(opts: Opts, csrPem: string, usage: CsrUsage, seconds: number): Promise<string> {
  return runJob({ op: 'sign', opts, csrPem, usage, days: seconds / 86_400 });
}
