// The server's PKI operations, each run in a short-lived worker thread (pki-worker.ts) so the X.509
// libraries never stay loaded in the long-running server (idle memory is a headline figure on small
// boards). Same files, same results as calling certs.ts directly.
import { Worker } from 'node:worker_threads';
import type { CsrUsage, EnsureServerPkiOptions, IssuedCert, ServerPki } from './certs.js';
import type { PkiJob } from './pki-worker.js';
import { errors } from '../api/status.js';

/** The PEMs of a ServerPki (plain data, so it can cross the thread boundary). */
export type ServerPkiFiles = Omit<ServerPki, 'caBundlePem' | 'issueClientCert' | 'signCsr'> & { caBundle: string };

/** What crosses the thread boundary: the PEMs (the CA keys stay on disk and in the worker). */
export function pkiFiles(pki: ServerPki): ServerPkiFiles {
  return {
    dir: pki.dir, serverCaPem: pki.serverCaPem, clientCaPem: pki.clientCaPem, servingCertPem: pki.servingCertPem,
    servingKeyPem: pki.servingKeyPem, adminCertPem: pki.adminCertPem, adminKeyPem: pki.adminKeyPem, caBundle: pki.caBundlePem(),
    requestHeaderCaPem: pki.requestHeaderCaPem, proxyClientCertPem: pki.proxyClientCertPem, proxyClientKeyPem: pki.proxyClientKeyPem,
  };
}

/**
 * At most this many PKI workers at once: each loads the X.509 stack (~20 MB), so a burst of
 * certificate requests (nodes joining, CSRs approved together) queues instead of multiplying it.
 * Each worker takes queued jobs one after another and is ended when the queue is empty.
 */
const MAX_WORKERS = 2;
/** Jobs waiting beyond this are refused with 429 (the caller retries after Retry-After). */
export const MAX_QUEUED_PKI_JOBS = 1000;

interface Pending { job: PkiJob; resolve: (v: unknown) => void; reject: (e: unknown) => void }
const queue: Pending[] = [];
let lanes = 0;

function runJob<T>(job: PkiJob): Promise<T> {
  if (queue.length >= MAX_QUEUED_PKI_JOBS) {
    return Promise.reject(errors.tooManyRequests('too many certificate requests are queued, please try again later', 5));
  }
  return new Promise<T>((resolve, reject) => {
    queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
    if (lanes < MAX_WORKERS) { lanes++; void lane().finally(() => { lanes--; }); }
  });
}

/** One worker's life: jobs from the queue until it is empty. */
async function lane(): Promise<void> {
  // Run from source (tests under tsx, where workers cannot load .ts): the same jobs, in process.
  if (import.meta.url.endsWith('.ts')) {
    const { runPkiJob } = await import('./pki-worker.js');
    for (let p = queue.shift(); p; p = queue.shift()) await runPkiJob(p.job).then(p.resolve, p.reject);
    return;
  }
  let worker: Worker | undefined;
  try {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const current = p;
      worker ??= new Worker(new URL('./pki-worker.js', import.meta.url));
      const w = worker;
      const ok = await new Promise<boolean>((done) => {
        const onMessage = (m: { ok: boolean; result?: unknown; error?: string }) => {
          cleanup();
          if (m.ok) current.resolve(m.result); else current.reject(new Error(m.error));
          done(true);
        };
        const onError = (e: unknown) => { cleanup(); current.reject(e); done(false); };
        const onExit = (code: number) => { cleanup(); current.reject(new Error(`PKI worker exited with code ${code}`)); done(false); };
        const cleanup = () => { w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit); };
        w.on('message', onMessage);
        w.once('error', onError);
        w.once('exit', onExit);
        w.postMessage(current.job);
      });
      if (!ok) { void w.terminate(); worker = undefined; }
    }
  } finally {
    if (worker) await worker.terminate();
  }
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
