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
/**
 * A job that would wait longer than this is refused with 429 too: its client would time out (30 s)
 * before its turn and ask again, so the queue would fill with work nobody waits for. Retry-After
 * spreads the retries over the expected wait.
 */
const MAX_EXPECTED_WAIT_MS = 10_000;
/** Moving average of one job's time (ms), from the jobs done so far. */
let averageJobMs = 50;

interface Pending { job: PkiJob; resolve: (v: unknown) => void; reject: (e: unknown) => void }
const queue: Pending[] = [];
let lanes = 0;

function runJob<T>(job: PkiJob): Promise<T> {
  const expectedMs = (queue.length / MAX_WORKERS) * averageJobMs;
  if (queue.length >= MAX_QUEUED_PKI_JOBS || expectedMs > MAX_EXPECTED_WAIT_MS) {
    return Promise.reject(errors.tooManyRequests('too many certificate requests are queued, please try again later',
      Math.max(1, Math.ceil(expectedMs / 1000))));
  }
  return new Promise<T>((resolve, reject) => {
    queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
    if (lanes < MAX_WORKERS) { lanes++; void lane().finally(() => { lanes--; }); }
  });
}

function timed(t0: number): void {
  averageJobMs = 0.8 * averageJobMs + 0.2 * (performance.now() - t0);
}

/** One worker's life: jobs from the queue until it is empty. */
async function lane(): Promise<void> {
  // Run from source (tests under tsx, where workers cannot load .ts): the same jobs, in process.
  if (import.meta.url.endsWith('.ts')) {
    const { runPkiJob } = await import('./pki-worker.js');
    for (let p = queue.shift(); p; p = queue.shift()) {
      const t0 = performance.now();
      await runPkiJob(p.job).then(p.resolve, p.reject);
      timed(t0);
    }
    return;
  }
  let worker: Worker | undefined;
  try {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const current = p;
      const t0 = performance.now();
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
      timed(t0);
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
