// Pulls from a private registry, end to end as root: Debian's `docker-registry` on loopback (plain HTTP,
// htpasswd auth) holds a busybox image pushed by this test over the registry HTTP API; a real server
// and `skiff agent` with its own containerd then run pods from it. Without credentials, or with a wrong
// password, the pull fails (ErrImagePull/ImagePullBackOff); with `kubectl create secret docker-registry`
// as imagePullSecrets the pod runs; and a registries.yaml mirror with `configs.<host>.auth` lets a pod
// without secrets pull through the mirror. Everything is torn down, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { busyboxImage } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = randomBytes(3).toString('hex');
const BRIDGE = `skrg${run}`;
const NODE = `registry-${run}`;
const USER = 'u';
const PASSWORD = 'p';
const REPO = 'team/busybox';
const TAG = 'private';
// Short: containerd's socket path must fit a unix socket address.
const dir = mkdtempSync('/tmp/skiff-rg-');
const agentDir = join(dir, 'agent-data');
let server: TestServer | undefined;
let registry: ChildProcess | undefined;
let agent: ChildProcess | undefined;
let port = 0;

function requirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  const bins: Array<[string, string]> = [
    ['/usr/bin/containerd', 'containerd'], ['/usr/sbin/runc', 'runc'], ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
    ['/bin/busybox', 'busybox-static'], ['/usr/bin/docker-registry', 'docker-registry'], ['/usr/bin/htpasswd', 'apache2-utils'],
  ];
  for (const [bin, pkg] of bins) if (!existsSync(bin)) missing.push(`${bin} (apt-get install ${pkg})`);
  return missing;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-25).join('\n');
  } catch {
    return '(no log)';
  }
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
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
      throw new Error(`timed out waiting for ${what} (${last instanceof Error ? last.message : 'no error'})\n--- agent log\n${logTail(join(dir, 'agent.log'))}`);
    }
    await new Promise((r) => setTimeout(r, 300));
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

const basicAuth = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

async function registryFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(path.startsWith('http') ? path : `http://127.0.0.1:${port}${path}`, {
    ...init, headers: { authorization: basicAuth, ...(init.headers as Record<string, string> | undefined) },
  });
  if (res.status >= 300) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** Pushes the OCI layout in `tar` as REPO:TAG through the distribution API (blobs, then the manifest). */
async function pushImage(tar: Buffer): Promise<void> {
  const files = untar(tar);
  const index = JSON.parse(files.get('index.json')!.toString('utf8'));
  const desc = index.manifests[0];
  const blob = (digest: string) => files.get(`blobs/${digest.replace(':', '/')}`)!;
  const manifest = blob(desc.digest);
  const m = JSON.parse(manifest.toString('utf8'));
  assert.ok(m.layers, 'a single-platform image manifest');
  for (const d of [m.config, ...m.layers]) {
    const start = await registryFetch(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    const location = new URL(start.headers.get('location')!, `http://127.0.0.1:${port}`);
    location.searchParams.set('digest', d.digest);
    await registryFetch(location.toString(), { method: 'PUT', body: new Uint8Array(blob(d.digest)), headers: { 'content-type': 'application/octet-stream' } });
  }
  await registryFetch(`/v2/${REPO}/manifests/${TAG}`, { method: 'PUT', body: new Uint8Array(manifest), headers: { 'content-type': desc.mediaType } });
}

async function startRegistry(): Promise<void> {
  port = await freePort();
  const htpasswd = spawnSync('/usr/bin/htpasswd', ['-Bbn', USER, PASSWORD], { encoding: 'utf8' });
  assert.equal(htpasswd.status, 0, htpasswd.stderr);
  writeFileSync(join(dir, 'htpasswd'), htpasswd.stdout);
  writeFileSync(join(dir, 'registry.yml'), [
    'version: 0.1',
    'log: { level: warn }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'registry-data')} } }`,
    `http: { addr: "127.0.0.1:${port}" }`,
    `auth: { htpasswd: { realm: skiff-test, path: ${join(dir, 'htpasswd')} } }`,
    '',
  ].join('\n'));
  const log = openSync(join(dir, 'registry.log'), 'a');
  try {
    registry = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'registry.yml')], { stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  // Up when /v2/ answers; 401 without credentials proves auth is on.
  const status = await eventually('the registry to listen', async () => (await fetch(`http://127.0.0.1:${port}/v2/`)).status, 15_000);
  assert.equal(status, 401, 'the registry demands credentials');
}

before(async () => {
  const missing = requirements();
  if (missing.length) throw new Error(`the private registry end-to-end test needs: ${missing.join(', ')}`);
  await startRegistry();
  await pushImage(busyboxImage({ name: `127.0.0.1:${port}/${REPO}:${TAG}` }));
  server = await startServer();
  // A mirror reached by another name of the same registry, with credentials in registries.yaml only:
  // pulls of the 127.0.0.1 name get none of them.
  const registriesYaml = join(dir, 'registries.yaml');
  writeFileSync(registriesYaml, [
    'mirrors:',
    '  mirror.skiff.test:',
    `    endpoint: ["http://localhost:${port}"]`,
    'configs:',
    `  "localhost:${port}":`,
    `    auth: { username: ${USER}, password: ${PASSWORD} }`,
    '',
  ].join('\n'));
  mkdirSync(agentDir, { recursive: true });
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const log = openSync(join(dir, 'agent.log'), 'a');
  try {
    // From source (not bin/skiff's build), so the test exercises this tree's agent.
    agent = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'agent', '--server', server.url, '--token', token, '--data-dir', agentDir,
      '--node-name', NODE, '--node-ip', '127.0.0.1', '--bridge-name', BRIDGE, '--private-registry', registriesYaml],
    { stdio: ['ignore', log, log], cwd: REPO_ROOT });
  } finally {
    closeSync(log);
  }
  await eventually('the node Ready', async () => / Ready /.test(await k(['get', 'node', NODE, '--no-headers'])));
});

after(async () => {
  agent?.kill('SIGKILL');
  registry?.kill('SIGKILL');
  await server?.dispose().catch(() => undefined);
  await teardownRuntime({ dataDir: agentDir, removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  spawnSync('rm', ['-rf', dir]);
});

const k = async (args: string[], input?: string) => ok(await server!.kubectl(args, { input }));

async function createPod(name: string, image: string, pullSecrets: string[] = []): Promise<void> {
  await k(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: {
      nodeName: NODE, terminationGracePeriodSeconds: 0,
      imagePullSecrets: pullSecrets.map((n) => ({ name: n })),
      containers: [{ name: 'main', image, command: ['sleep', '3600'] }],
    },
  }));
}

async function podState(name: string): Promise<{ phase: string; waiting?: string; message?: string }> {
  const p = JSON.parse(await k(['get', 'pod', name, '-o', 'json']));
  const w = p.status?.containerStatuses?.[0]?.state?.waiting;
  return { phase: p.status?.phase, waiting: w?.reason, message: w?.message };
}

async function pullFails(name: string): Promise<void> {
  const s = await eventually(`${name} to fail its pull`, async () => {
    const st = await podState(name);
    return /^(ErrImagePull|ImagePullBackOff)$/.test(st.waiting ?? '') && st;
  });
  assert.equal(s.phase, 'Pending');
  assert.match(s.message ?? '', /401|unauthorized|authoriz/i, 'the registry refused the pull');
}

async function running(name: string): Promise<void> {
  await eventually(`${name} Running`, async () => (await podState(name)).phase === 'Running', 90_000);
}

test('a private image starts only with the right imagePullSecrets', async () => {
  const image = `127.0.0.1:${port}/${REPO}:${TAG}`;
  await createPod('no-secret', image);
  await k(['create', 'secret', 'docker-registry', 'badcred', `--docker-server=127.0.0.1:${port}`, `--docker-username=${USER}`, '--docker-password=wrong']);
  await createPod('bad-secret', image, ['badcred']);
  await pullFails('no-secret');
  await pullFails('bad-secret');

  await k(['create', 'secret', 'docker-registry', 'regcred', `--docker-server=127.0.0.1:${port}`, `--docker-username=${USER}`, `--docker-password=${PASSWORD}`]);
  await createPod('with-secret', image, ['regcred']);
  await running('with-secret');
});

test('registries.yaml: a mirror with configs auth serves a pod without imagePullSecrets', async () => {
  await createPod('via-mirror', `mirror.skiff.test/${REPO}:${TAG}`);
  await running('via-mirror');
  const hosts = readFileSync(join(agentDir, 'agent', 'etc', 'containerd', 'certs.d', 'mirror.skiff.test', 'hosts.toml'), 'utf8');
  assert.match(hosts, new RegExp(`\\[host\\."http://localhost:${port}"\\]`));
});
