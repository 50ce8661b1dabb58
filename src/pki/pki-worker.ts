// Runs in a worker thread (see isolated.ts): the X.509 library stack costs ~20 MB of memory that a
// server should not carry for its whole life just to create certificates at first start or to sign
// a joining node's certificate now and then. The worker exits after each job, returning that memory.
import { parentPort, workerData } from 'node:worker_threads';
import { ensureServerPki, type CsrUsage, type EnsureServerPkiOptions } from './certs.js';
import { pkiFiles } from './isolated.js';

export type PkiJob =
  | { op: 'ensure'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'> }
  | { op: 'issue'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'>; cn: string; groups: string[]; days?: number }
  | { op: 'sign'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'>; csrPem: string; usage: CsrUsage; days: number };

async function main(job: PkiJob): Promise<unknown> {
  const pki = await ensureServerPki(job.opts);
  if (job.op === 'issue') return pki.issueClientCert(job.cn, job.groups, job.days);
  if (job.op === 'sign') return pki.signCsr(job.csrPem, job.usage, job.days);
  return pkiFiles(pki);
}

main(workerData as PkiJob).then(
  (result) => parentPort!.postMessage({ ok: true, result }),
  (err: unknown) => parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) }),
);
