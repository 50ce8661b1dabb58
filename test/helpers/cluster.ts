// Starts real `skiff server` processes for end-to-end tests. Every server is registered so that one
// hook kills leftovers and removes their temp dirs even when a test fails or throws; when a test
// fails, the tail of each live server's log is printed, since that is the first thing to read.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { runKubectl, KubectlStream, type KubectlOptions, type KubectlResult } from './kubectl.js';
import { testDatastore, choosesOwnDatastore, planDatastore, embeddedEtcdArgs, joinerArgs, stopTestDatastores } from './test-datastore.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Agents that tests start in this machine's own network namespace must not program its nat and
// filter hooks (nor fight over one `skiff-proxy` table when several run at once): they inherit this
// and run no service proxy. Agents in their own namespaces (netns-host.ts) get the proxy.
process.env.SKIFF_DISABLE_KUBE_PROXY ??= 'true';
// Likewise the network policy table (hooks on forward and input): only agents in namespaces of their own.
process.env.SKIFF_DISABLE_NETWORK_POLICY ??= 'true';
// Nor may they take this machine's ports 80 and 443 for the ingress proxy (netns agents do serve it).
process.env.SKIFF_INGRESS_HTTP_PORT ??= '0';
process.env.SKIFF_INGRESS_HTTPS_PORT ??= '0';
// Test agents' cluster DNS forwards nothing off this machine: with no upstream (air-gapped), names
// outside the cluster get SERVFAIL at once. A test that wants an upstream passes --resolv-conf.
process.env.SKIFF_RESOLV_CONF ??= '/dev/null';
const SKIFF_BIN = join(REPO_ROOT, 'bin', 'skiff');
// A wait bound, not a budget: a loaded 2-core machine can take many seconds to start a server.
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Server flags for suites that test the API server alone (issue 2): no control loop touches their
 * objects, so counts and resourceVersions stay exactly as the test wrote them.
 */
export const API_ONLY = ['--disable-controller-manager'];

export interface StartOptions {
  args?: string[];                 // extra `skiff server` flags
  env?: Record<string, string>;
  dataDir?: string;                // reuse a data dir (not removed at cleanup when given)
  port?: number;
}

export interface RequestOptions {
  body?: string | Buffer | object; // objects are sent as JSON
  headers?: Record<string, string>;
  contentType?: string;
  token?: string;                  // bearer token instead of the admin client certificate
  noAuth?: boolean;                // neither certificate nor token
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json(): any;
}

/** Stops a child the way its owner would (SIGTERM), then SIGKILL after `graceMs`; returns once it exited. */
export async function stopChild(proc: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<TestServer>();

export class TestServer {
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly kubeconfigPath: string;
  readonly logPath: string;
  adminCert = '';
  adminKey = '';
  caPem = '';
  proc!: ChildProcess;
  /** Run once the server stopped, on dispose: what the SKIFF_TEST_DATASTORE switch started for it. */
  readonly disposers: (() => Promise<void>)[] = [];
  private exited!: Promise<void>;

  constructor(private readonly opts: StartOptions, port: number, dataDir: string, readonly ownsDataDir: boolean) {
    this.port = port;
    this.url = `https://127.0.0.1:${port}`;
    this.dataDir = dataDir;
    this.kubeconfigPath = join(dataDir, 'kubeconfig.yaml');
    this.logPath = join(dataDir, 'server.log');
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Spawns the process and waits for /readyz; rejects with the log tail on timeout or early exit. */
  async launch(): Promise<void> {
    const args = [
      'server',
      '--data-dir', this.dataDir,
      '--https-listen-port', String(this.port),
      '--bind-address', '127.0.0.1',
      '--write-kubeconfig', this.kubeconfigPath,
      '--disable-agent',
      ...(this.opts.args ?? []),
    ];
    // Appending keeps the log of earlier runs across restart(), which is what a failing restart test needs.
    const logFd = openSync(this.logPath, 'a');
    try {
      this.proc = spawn(SKIFF_BIN, args, {
        cwd: REPO_ROOT,
        env: { ...inheritedEnv(), ...this.opts.env },
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    const proc = this.proc;
    this.exited = new Promise((resolve) => proc.on('exit', () => resolve()));
    await this.waitReady();
    this.readCredentials();
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`skiff server exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode}) before ready\n${this.logTail()}`);
      try {
        const r = await this.request('GET', '/readyz', { noAuth: true });
        if (r.status === 200 && existsSync(this.kubeconfigPath)) return;
        last = `${r.status} ${r.body.slice(0, 200)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(100);
    }
    throw new Error(`skiff server not ready after ${READY_TIMEOUT_MS} ms (last /readyz: ${last})\n${this.logTail()}`);
  }

  private readCredentials(): void {
    const kc = parseYaml(readFileSync(this.kubeconfigPath, 'utf8'));
    const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
    this.caPem = b64(kc?.clusters?.[0]?.cluster?.['certificate-authority-data']);
    this.adminCert = b64(kc?.users?.[0]?.user?.['client-certificate-data']);
    this.adminKey = b64(kc?.users?.[0]?.user?.['client-key-data']);
  }

  /** The last `lines` lines of the server's stderr/stdout log. */
  logTail(lines = 40): string {
    let text = '';
    try { text = readFileSync(this.logPath, 'utf8'); } catch { return `(no log at ${this.logPath})`; }
    return `--- last ${lines} lines of ${this.logPath}\n` + text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResult> {
    let body: Buffer | undefined;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? Buffer.from(opts.body)
        : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(body.length);
    }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const useCert = !opts.noAuth && opts.token === undefined && this.adminCert !== '';
    return new Promise((resolve, reject) => {
      const req = httpsRequest({
        host: '127.0.0.1',
        port: this.port,
        method,
        path,
        headers,
        // Before the kubeconfig exists (readiness polling) there is no CA to pin yet.
        ca: this.caPem || undefined,
        rejectUnauthorized: this.caPem !== '',
        cert: useCert ? this.adminCert : undefined,
        key: useCert ? this.adminKey : undefined,
        agent: false,
        timeout: 15_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  private kubectlBase(version: string): string[] {
    // One discovery cache per server and kubectl version: a cache from another server on a
    // reused port, or another version's layout, must never leak into a test.
    return ['--kubeconfig', this.kubeconfigPath, '--cache-dir', join(this.dataDir, `kubectl-cache-${version}`)];
  }

  kubectl(args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
    return runKubectl(this.kubectlBase(opts.version ?? '1.32'), args, opts);
  }

  /** Starts a long-running kubectl (`get -w`); the caller stops it. */
  kubectlStream(args: string[], opts: KubectlOptions = {}): KubectlStream {
    const s = new KubectlStream(this.kubectlBase(opts.version ?? '1.32'), args, opts);
    streams.add(s);
    s.proc.on('close', () => streams.delete(s));
    return s;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => { if (this.running) this.proc.kill('SIGKILL'); }, STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  async kill9(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** Stops (if running) and starts again on the same data dir and port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the server and removes its temp dir; idempotent. */
  async dispose(): Promise<void> {
    await this.stop();
    live.delete(this);
    for (const d of this.disposers.splice(0)) await d().catch(() => {});
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const streams = new Set<KubectlStream>();

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const port = opts.port ?? await freePort();
  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'skiff-test-'));
  mkdirSync(dataDir, { recursive: true });
  // SKIFF_TEST_DATASTORE (test-datastore.ts): the same server on another backend; unset, nothing changes.
  const backend = choosesOwnDatastore(opts.args ?? []) ? undefined : testDatastore();
  if (backend !== undefined) return startServerOn(backend, opts, port, dataDir, ownsDataDir);
  const server = new TestServer(opts, port, dataDir, ownsDataDir);
  live.add(server);
  try {
    await server.launch();
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}

async function startServerOn(backend: NonNullable<ReturnType<typeof testDatastore>>, opts: StartOptions, port: number, dataDir: string, ownsDataDir: boolean): Promise<TestServer> {
  const testArgs = opts.args ?? [];
  const plan = backend === 'embedded-etcd' ? { args: ['--cluster-init', ...await embeddedEtcdArgs()] } : await planDatastore(backend, dataDir);
  const server = new TestServer({ ...opts, args: [...testArgs, ...plan.args] }, port, dataDir, ownsDataDir);
  if ('dispose' in plan && plan.dispose) server.disposers.push(plan.dispose);
  live.add(server);
  try {
    await server.launch();
    if (backend === 'embedded-etcd') {
      // Two more members joining the first, one at a time: etcd takes one new member (a learner, then
      // promoted) at a time.
      const token = readFileSync(join(dataDir, 'server', 'token'), 'utf8').trim();
      const joiners: TestServer[] = [];
      server.disposers.push(async () => { await Promise.all(joiners.map((j) => j.dispose())); });
      for (let i = 0; i < 2; i++) {
        joiners.push(await startServer({ env: opts.env, args: [...joinerArgs(testArgs), '--server', server.url, '--token', token, ...await embeddedEtcdArgs()] }));
      }
    }
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}

/** Runs `fn` against a fresh server that is always disposed; a failure carries the server's log tail. */
export async function withServer<T>(fn: (s: TestServer) => Promise<T>, opts: StartOptions = {}): Promise<T> {
  const server = await startServer(opts);
  try {
    return await fn(server);
  } catch (err) {
    if (err instanceof Error) err.message += `\n${server.logTail()}`;
    throw err;
  } finally {
    await server.dispose();
  }
}

export async function cleanupAll(): Promise<void> {
  for (const s of streams) await s.stop();
  await Promise.all([...live].map((s) => s.dispose()));
  await stopTestDatastores();
}

// Every skiff flag has a SKIFF_* twin; one set in the developer's shell must not change test servers.
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

afterEach((t) => {
  // `passed` exists at run time on Node 20.20 but is missing from @types/node 20.
  if ((t as { passed?: boolean }).passed !== false) return;
  for (const s of live) process.stderr.write(`\n[${t.name}] failed; server ${s.url}\n${s.logTail()}\n`);
});
after(cleanupAll);
// Last resort when the runner exits without running hooks (uncaught error, process.exit): nothing
// async is possible here, so kill hard and remove dirs synchronously.
process.on('exit', () => {
  for (const st of streams) st.proc.kill('SIGKILL');
  for (const s of live) {
    if (s.running) s.proc.kill('SIGKILL');
    if (s.ownsDataDir) rmSync(s.dataDir, { recursive: true, force: true });
  }
});

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'manifests');

/**
 * A manifest from test/fixtures/manifests, with literal replacements applied (e.g. renaming `edge-1`
 * so tests sharing a server do not collide); pass the result to kubectl as `-f -` input.
 */
export function fixture(name: string, replace: Record<string, string> = {}): string {
  let text = readFileSync(join(FIXTURES, name), 'utf8');
  for (const [from, to] of Object.entries(replace)) text = text.split(from).join(to);
  return text;
}

export function fixturePath(name: string): string {
  return join(FIXTURES, name);
}
