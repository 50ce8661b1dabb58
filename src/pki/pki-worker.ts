// Runs in a worker thread (see isolated.ts): the X.509 library stack costs ~20 MB of memory that a
// server should not carry for its whole life just to create certificates at first start or to sign
// a joining node's certificate now and then. A worker takes jobs while its pool has queued work
// (a join storm loads the stack once per worker, not once per node) and is ended when the queue
// is empty, returning that memory.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { ensureServerPki, type CsrUsage, type EnsureServerPkiOptions, type ServerPki } from './certs.js';
import { pkiFiles } from './isolated.js';

export type PkiJob =
  | { op: 'ensure'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'> }
  | { op: 'issue'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'>; cn: string; groups: string[]; days?: number }
  | { op: 'sign'; opts: Omit<EnsureServerPkiOptions, 'log' | 'now'>; csrPem: string; usage: CsrUsage; days: number };

/**
 * The PKI the last job loaded, reused while its files are unchanged. Loading it (every CA and leaf
 * parsed, keys imported, each leaf checked for renewal) was two thirds of a node's certificate in a
 * join storm: 5,000 hollow nodes joining spent 65 s of a worker's 127 s there. A changed file (a CA
 * rotated, a certificate renewed by the server or by hand) changes the stamp, and the next job loads
 * the PKI again.
 */
let loaded: { key: string; stamp: string; pki: ServerPki } | undefined;

/** Names, inodes, sizes and modification times of the PKI's files: what a rotation or renewal changes. */
function filesStamp(dataDir: string): string {
  const dir = join(dataDir, 'server', 'tls');
  try {
    return readdirSync(dir).sort().map((f) => {
      const st = statSync(join(dir, f));
      return `${f}:${st.ino}:${st.size}:${st.mtimeMs}`;
    }).join('|');
  } catch {
    return '';   // no PKI yet: never matches a loaded one
  }
}

async function serverPki(opts: PkiJob['opts'], reuse: boolean): Promise<ServerPki> {
  const key = JSON.stringify(opts);
  if (reuse && loaded?.key === key && loaded.stamp !== '' && loaded.stamp === filesStamp(opts.dataDir)) return loaded.pki;
  const pki = await ensureServerPki(opts);
  loaded = { key, stamp: filesStamp(opts.dataDir), pki };
  return pki;
}

export async function runPkiJob(job: PkiJob): Promise<unknown> {
  // `ensure` is the server's own check at start and on renewal: always from the files.
  const pki = await serverPki(job.opts, job.op !== 'ensure');
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
