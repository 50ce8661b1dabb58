// A real HTTPS admission webhook for tests: a CA and a serving certificate made with openssl (for
// 127.0.0.1 and any extra names), and test/fixtures/admission-webhook-server.mjs started as its own
// `node` process. Stopped and its files removed when the test ends, pass or fail.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
/** Where cleanups go: a TestContext, or `{ after }` from node:test for a whole file. */
export interface Cleanup { after(fn: () => unknown): void }

const SERVER_SCRIPT = join(import.meta.dirname, '..', 'fixtures', 'admission-webhook-server.mjs');

export interface WebhookServer {
  port: number;
  /** base64 PEM, as a webhook's caBundle. */
  caBundle: string;
  caPem: string;
  url: (path: string) => string;
  /** Reviews received per path. */
  counts: () => Promise<Record<string, number>>;
  last: () => Promise<Record<string, any>>;
  stop: () => void;
}

export function makeServingCert(dir: string, names: { ips?: string[]; dns?: string[] } = {}): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, f);
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=webhook-test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('tls.key'), '-out', p('tls.csr'), '-subj', '/CN=webhook');
  const san = [...(names.ips ?? ['127.0.0.1']).map((i) => `IP:${i}`), ...(names.dns ?? []).map((d) => `DNS:${d}`)].join(',');
  writeFileSync(p('ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  run('x509', '-req', '-in', p('tls.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('tls.crt'), '-days', '2', '-extfile', p('ext.cnf'));
  return { ca: p('ca.crt'), cert: p('tls.crt'), key: p('tls.key') };
}

export async function startWebhookServer(t: Cleanup, names?: { ips?: string[]; dns?: string[] }, host = '127.0.0.1'): Promise<WebhookServer> {
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); } catch { throw new Error('openssl is needed to make the webhook test certificates'); }
  const dir = mkdtempSync(join(tmpdir(), 'skiff-webhook-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = makeServingCert(dir, names);
  const caPem = readFileSync(files.ca, 'utf8');
  const child: ChildProcess = spawn(process.execPath, [SERVER_SCRIPT, files.cert, files.key, '0', host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => { if (child.exitCode === null && !child.killed) child.kill('SIGTERM'); };
  t.after(stop);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`webhook server exited (${code})`)));
  });
  const get = (path: string) => new Promise<any>((resolve, reject) => {
    request({ host, port, path, ca: caPem, servername: names?.dns?.[0] }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    }).on('error', reject).end();
  });
  return {
    port, caPem, caBundle: Buffer.from(caPem).toString('base64'),
    url: (path) => `https://${host}:${port}${path}`,
    counts: () => get('/count'), last: () => get('/last'), stop,
  };
}
