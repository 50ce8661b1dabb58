// Runs in a worker thread (see isolated.ts): the X.509 library stack costs ~20 MB of memory that a
// server should not carry for its whole life just to create certificates at first start or to sign
// a joining node's certificate now and then. A worker takes jobs while its pool has queued work
// (a join storm loads the stack once per worker, not once per node) and is ended when the queue
// is empty, returning that memory.
import { parentPort } from 'node:worker_threads';
import { ensureServerPki, type CsrUsage, type EnsureServerPkiOptions } from './certs.js';
import { pkiFiles } from './isolated.js';

export type PkiJob =
  | { op: 'ensure'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'> }
  | { op: 'issue'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'>; cn: string; groups: string[]; days?: number }
  | { op: 'sign'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'>; csrPem: string; usage: CsrUsage; days: number };

export async function runPkiJob(job: PkiJob): Promise<unknown> {
  const pki = await ensureServerPki(job.opts);
  if (job.op === 'issue') return pki.issueClientCert(job.cn, job.groups, job.days);
  if (job.op === 'sign') return pki.signCsr(job.csrPem, job.usage, job.days);
  return pkiFiles(pki);
}

parentPort?.on('message', (job: PkiJob) => {
  runPkiJob(job).then(
    (result) => parentPort!.postMessage({ ok: true, result }),
    (err: unknown) => parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
