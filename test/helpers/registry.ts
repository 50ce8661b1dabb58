// Shared by the registry end-to-end tests: Debian's `docker-registry` on loopback (plain HTTP or HTTPS
// with a test CA, htpasswd auth), pushing an offline-built OCI image to it over the distribution API,
// a `skiff agent` (from source) with a registries.yaml, and pod helpers. Each test file owns one
// instance of everything under its own temp dir and tears it down in `dispose`, also on failure.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, startServer, REPO_ROOT, type TestServer } from './cluster.js';
import { ok } from './kubectl.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

export const USER = 'u';
export const PASSWORD = 'p';

/** What the registry tests need on this machine, as apt packages to install. */
export function registryRequirements(extra: Array<[string, string]> = []): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  const bins: Array<[string, string]> = [
    ['/usr/bin/containerd', 'containerd'], ['/usr/sbin/runc', 'runc'], ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
    ['/bin/busybox', 'busybox-static'], ['/usr/bin/docker-registry', 'docker-registry'], ['/usr/bin/htpasswd', 'apache2-utils'], ...extra,
  ];
  for (const [bin, pkg] of bins) if (!existsSync(bin)) missing.push(`${bin} (apt-get install ${pkg})`);
  return missing;
}

export function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-25).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The entries of an uncompressed ustar archive (regular files only). */
function untar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (let off = 0; off + 512 <= tar.length;) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number) => header.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = (prefix ? `${prefix}/` : '') + field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    if (type === '0' || type === '') files.set(name.replace(/^\.\//, ''), tar.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

export interface RegistryOptions {
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
}

/** A test CA and a server certificate from it for 127.0.0.1 and localhost, made with the openssl CLI. */
export function makeTestCa(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => join(dir, n);
  const openssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `openssl ${args[0]}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=skiff registry test CA']);
  openssl(['req', ...ec, '-keyout', f('registry.key'), '-out', f('registry.csr'), '-subj', '/CN=localhost']);
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', f('registry.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1',
    '-extfile', f('san.ext'), '-out', f('registry.pem')]);
  return { ca: f('ca.pem'), cert: f('registry.pem'), key: f('registry.key') };
}

export class RegistryHarness {
  readonly run = randomBytes(3).toString('hex');
  readonly bridge = `skrg${this.run}`;
  readonly node = `registry-${this.run}`;
  // Short: containerd's socket path must fit a unix socket address.
  readonly dir = mkdtempSync('/tmp/skiff-rg-');
  readonly agentDir = join(this.dir, 'agent-data');
  server?: TestServer;
  port = 0;
  /** The CA file trusted for pushes to an HTTPS registry. */
  ca?: string;
  private registry?: ChildProcess;
  private agent?: ChildProcess;

  get scheme(): string {
    return this.ca ? 'https' : 'http';
  }

  async eventually<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
    const deadline = Date.now() + ms;
    let last: unknown;
    for (;;) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what} (${last instanceof Error ? last.message : 'no error'})\n--- agent log\n${logTail(join(this.dir, 'agent.log'))}`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  /** One request to the registry (with the test credentials unless `anonymous`), trusting `ca`. */
  registryRequest(path: string, init: { method?: string; body?: Buffer; headers?: Record<string, string>; anonymous?: boolean } = {}): Promise<{ status: number; location?: string; text: string }> {
    const url = new URL(path, `${this.scheme}://127.0.0.1:${this.port}`);
    const headers: Record<string, string> = { ...init.headers };
    if (!init.anonymous) headers.authorization = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    if (init.body) headers['content-length'] = String(init.body.length);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers, ...(this.ca ? { ca: readFileSync(this.ca) } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(init.body);
    });
  }

  private async registryOk(path: string, init: Parameters<RegistryHarness['registryRequest']>[1] = {}) {
    const res = await this.registryRequest(path, init);
    if (res.status >= 300) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${res.text}`);
    return res;
  }

  /** Pushes the OCI layout in `tar` as repo:tag through the distribution API (blobs, then the manifest). */
  async pushImage(tar: Buffer, repo: string, tag: string): Promise<void> {
    const files = untar(tar);
    const index = JSON.parse(files.get('index.json')!.toString('utf8'));
    const desc = index.manifests[0];
    const blob = (digest: string) => files.get(`blobs/${digest.replace(':', '/')}`)!;
    const manifest = blob(desc.digest);
    const m = JSON.parse(manifest.toString('utf8'));
    assert.ok(m.layers, 'a single-platform image manifest');
    for (const d of [m.config, ...m.layers]) {
      const start = await this.registryOk(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      const location = new URL(start.location!, `${this.scheme}://127.0.0.1:${this.port}`);
      location.searchParams.set('digest', d.digest);
      await this.registryOk(location.pathname + location.search, { method: 'PUT', body: blob(d.digest), headers: { 'content-type': 'application/octet-stream' } });
    }
    await this.registryOk(`/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': desc.mediaType } });
  }

  async startRegistry(opts: RegistryOptions = {}): Promise<void> {
    this.port = await freePort();
    const htpasswd = spawnSync('/usr/bin/htpasswd', ['-Bbn', USER, PASSWORD], { encoding: 'utf8' });
    assert.equal(htpasswd.status, 0, htpasswd.stderr);
    writeFileSync(join(this.dir, 'htpasswd'), htpasswd.stdout);
    const tls = opts.tls ? `, tls: { certificate: ${opts.tls.cert}, key: ${opts.tls.key} }` : '';
    writeFileSync(join(this.dir, 'registry.yml'), [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${join(this.dir, 'registry-data')} } }`,
      `http: { addr: "127.0.0.1:${this.port}"${tls} }`,
      `auth: { htpasswd: { realm: skiff-test, path: ${join(this.dir, 'htpasswd')} } }`,
      '',
    ].join('\n'));
    const log = openSync(join(this.dir, 'registry.log'), 'a');
    try {
      this.registry = spawn('/usr/bin/docker-registry', ['serve', join(this.dir, 'registry.yml')], { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    // Up when /v2/ answers; 401 without credentials proves auth is on.
    const status = await this.eventually('the registry to listen', async () => (await this.registryRequest('/v2/', { anonymous: true })).status, 15_000);
    assert.equal(status, 401, 'the registry demands credentials');
  }

  /** A server, and an agent (this tree's source, not bin/skiff's build) with `registriesYaml`; waits for Ready. */
  async startCluster(registriesYaml: string): Promise<void> {
    this.server = await startServer();
    const file = join(this.dir, 'registries.yaml');
    writeFileSync(file, registriesYaml);
    mkdirSync(this.agentDir, { recursive: true });
    const token = readFileSync(join(this.server.dataDir, 'server', 'node-token'), 'utf8').trim();
    const log = openSync(join(this.dir, 'agent.log'), 'a');
    try {
      this.agent = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'agent', '--server', this.server.url, '--token', token,
        '--data-dir', this.agentDir, '--node-name', this.node, '--node-ip', '127.0.0.1', '--bridge-name', this.bridge, '--private-registry', file],
      { stdio: ['ignore', log, log], cwd: REPO_ROOT });
    } finally {
      closeSync(log);
    }
    await this.eventually('the node Ready', async () => / Ready /.test(await this.k(['get', 'node', this.node, '--no-headers'])));
  }

  async dispose(): Promise<void> {
    this.agent?.kill('SIGKILL');
    this.registry?.kill('SIGKILL');
    await this.server?.dispose().catch(() => undefined);
    await teardownRuntime({ dataDir: this.agentDir, removeDataDir: true });
    spawnSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' });
    spawnSync('rm', ['-rf', this.dir]);
  }

  k = async (args: string[], input?: string): Promise<string> => ok(await this.server!.kubectl(args, { input }));

  async createPod(name: string, image: string, pullSecrets: string[] = []): Promise<void> {
    await this.k(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name },
      spec: {
        nodeName: this.node, terminationGracePeriodSeconds: 0,
        imagePullSecrets: pullSecrets.map((n) => ({ name: n })),
        containers: [{ name: 'main', image, command: ['sleep', '3600'] }],
      },
    }));
  }

  async pod(name: string): Promise<any> {
    return JSON.parse(await this.k(['get', 'pod', name, '-o', 'json']));
  }

  async podState(name: string): Promise<{ phase: string; waiting?: string; message?: string }> {
    const p = await this.pod(name);
    const w = p.status?.containerStatuses?.[0]?.state?.waiting;
    return { phase: p.status?.phase, waiting: w?.reason, message: w?.message };
  }

  /** Waits for ErrImagePull/ImagePullBackOff and checks the pod's waiting message. */
  async pullFails(name: string, message: RegExp, why: string): Promise<void> {
    const s = await this.eventually(`${name} to fail its pull`, async () => {
      const st = await this.podState(name);
      return /^(ErrImagePull|ImagePullBackOff)$/.test(st.waiting ?? '') && st;
    });
    assert.equal(s.phase, 'Pending');
    assert.match(s.message ?? '', message, why);
  }

  async running(name: string): Promise<void> {
    await this.eventually(`${name} Running`, async () => (await this.podState(name)).phase === 'Running', 90_000);
  }
}
