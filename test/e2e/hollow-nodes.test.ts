// `skiff hollow` against a real `skiff server`: nodes join through the real flow and show up Ready
// in kubectl, run and remove pods, are confined to their own objects by the node authorizer, keep
// their credentials across restarts, freeze on SIGUSR1, and refuse a token pinning another CA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';

// ---- running `skiff hollow` -------------------------------------------------------------------------

interface Hollow {
  proc: ChildProcess;
  dataDir: string;
  logPath: string;
  /** Resolves when stdout has printed a line containing `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const hollows = new Set<Hollow>();
const hollowDirs = new Set<string>();

process.on('exit', () => {
  for (const h of hollows) h.proc.kill('SIGKILL');
  for (const d of hollowDirs) rmSync(d, { recursive: true, force: true });
});

function newHollowDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-hollow-'));
  hollowDirs.add(d);
  return d;
}

/** Spawns `skiff hollow` from the sources (tsx), so the test does not depend on a fresh build. */
function spawnHollow(server: TestServer, token: string, args: string[], dataDir: string): Hollow {
  const logPath = join(dataDir, `hollow-${Date.now()}.log`);
  const errFd = openSync(logPath, 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
  const proc = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'hollow',
    '--server', server.url, '--token', token, '--data-dir', dataDir, ...args], {
    cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', errFd],
  });
  closeSync(errFd);
  let out = '';
  const listeners = new Set<() => void>();
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; for (const l of listeners) l(); });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => { hollows.delete(h); for (const l of listeners) l(); resolve(code); }));
  const h: Hollow = {
    proc, dataDir, logPath, exited,
    waitFor(text, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`skiff hollow: no "${text}" within ${timeoutMs} ms\n${logTail(logPath)}`)), timeoutMs);
        const check = () => {
          if (out.includes(text)) done();
          else if (proc.exitCode !== null) done(new Error(`skiff hollow exited (${proc.exitCode}) before "${text}"\n${logTail(logPath)}`));
        };
        const done = (err?: Error) => { clearTimeout(timer); listeners.delete(check); if (err) reject(err); else resolve(); };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  hollows.add(h);
  return h;
}

function logTail(path: string): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-20).join('\n'); } catch { return '(no log)'; }
}

function nodeToken(server: TestServer): string {
  return readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
}

/** A request with a hollow node's own client certificate, as stored under its data dir. */
function asNode(server: TestServer, hollowDir: string, node: string, method: string, path: string, body?: unknown,
  contentType = 'application/merge-patch+json'): Promise<{ status: number; body: string }> {
  const creds = JSON.parse(readFileSync(join(hollowDir, 'hollow', 'nodes', `${node}.json`), 'utf8'));
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.url}${path}`, {
      method, ca: creds.caPem, cert: creds.certPem, key: creds.keyPem, agent: false, timeout: 10_000,
      headers: payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function eventually<T>(fn: () => Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const podOn = (name: string, node: string) => JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
  spec: { nodeName: node, containers: [{ name: 'app', image: 'busybox' }] },
});

// ---- tests ------------------------------------------------------------------------------------------

test('skiff hollow joins Ready nodes that run pods and touch only their own objects', async (t) => {
  const server = await startServer();
  const dir = newHollowDir();
  t.after(async () => { for (const h of hollows) await h.stop(); rmSync(dir, { recursive: true, force: true }); });
  const token = nodeToken(server);
  const args = ['--count', '3', '--node-label', 'kubernetes.io/arch=arm64', '--node-label', 'tier=edge',
    '--node-taint', 'dedicated=edge:PreferNoSchedule', '--pod-start-delay', '200', '--heartbeat-interval', '0.5'];
  let hollow = spawnHollow(server, token, args, dir);
  await hollow.waitFor('hollow: 3 nodes ready');

  await t.test('kubectl get nodes shows 3 Ready nodes with their labels', async () => {
    const r = await server.kubectl(['get', 'nodes', '--no-headers', '-L', 'kubernetes.io/arch,tier,node.kubernetes.io/instance-type']);
    ok(r);
    const rows = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
    assert.deepEqual(rows.map((c) => c[0]), ['hollow-0', 'hollow-1', 'hollow-2'], r.stdout);
    for (const c of rows) {
      assert.equal(c[1], 'Ready', r.stdout);
      assert.equal(c[4], 'v1.32.4+skiff', r.stdout);
      assert.deepEqual(c.slice(-3), ['arm64', 'edge', 'hollow'], r.stdout);
    }
    const taints = await server.kubectl(['get', 'node', 'hollow-1', '-o', 'jsonpath={.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}']);
    assert.equal(taints.stdout, 'dedicated=edge:PreferNoSchedule');
    const leases = await server.kubectl(['get', 'leases', '-n', 'kube-node-lease', '-o', 'name']);
    assert.deepEqual(leases.stdout.trim().split('\n'), ['lease.coordination.k8s.io/hollow-0', 'lease.coordination.k8s.io/hollow-1', 'lease.coordination.k8s.io/hollow-2']);
  });

  await t.test('a pod bound to a hollow node becomes Running 1/1, and deleting it removes it', async () => {
    ok(await server.kubectl(['create', '-f', '-'], { input: podOn('web', 'hollow-1') }));
    const row = await eventually(async () => {
      const r = await server.kubectl(['get', 'pod', 'web', '--no-headers', '-o', 'wide']);
      return /\s1\/1\s+Running\s/.test(r.stdout) ? r.stdout : '';
    }, 'web Running 1/1');
    assert.match(row, /100\.64\.1\.\d+\s+hollow-1\s/, 'the pod IP comes from the node\'s block');
    const del = await server.kubectl(['delete', 'pod', 'web', '--timeout=20s']);
    ok(del);
    const gone = await server.kubectl(['get', 'pod', 'web']);
    assert.match(gone.stderr, /pods "web" not found/);
  });

  await t.test('a hollow node\'s credentials cannot modify another node or its pods', async () => {
    ok(await server.kubectl(['create', '-f', '-'], { input: podOn('theirs', 'hollow-2') }));
    await eventually(async () => (await server.kubectl(['get', 'pod', 'theirs', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', 'theirs Running');
    const label = { metadata: { labels: { hijacked: 'yes' } } };
    assert.equal((await asNode(server, dir, 'hollow-0', 'PATCH', '/api/v1/nodes/hollow-0', label)).status, 200, 'its own Node');
    const cases: [string, string, unknown][] = [
      ['PATCH', '/api/v1/nodes/hollow-1', label],
      ['PATCH', '/api/v1/nodes/hollow-1/status', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }],
      ['DELETE', '/api/v1/nodes/hollow-1', undefined],
      ['PATCH', '/api/v1/namespaces/default/pods/theirs/status', { status: { phase: 'Failed' } }],
      ['DELETE', '/api/v1/namespaces/default/pods/theirs', undefined],
      ['PATCH', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/hollow-1', { spec: { holderIdentity: 'hollow-0' } }],
    ];
    for (const [method, path, body] of cases) {
      const r = await asNode(server, dir, 'hollow-0', method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${r.body}`);
      assert.equal(JSON.parse(r.body).reason, 'Forbidden');
    }
    const after = await server.kubectl(['get', 'pod', 'theirs', '-o', 'jsonpath={.status.phase}']);
    assert.equal(after.stdout, 'Running');
  });

  await t.test('SIGUSR1 freezes and thaws the heartbeats', async () => {
    const renewTime = async () => (await server.kubectl(['get', 'lease', '-n', 'kube-node-lease', 'hollow-0', '-o', 'jsonpath={.spec.renewTime}'])).stdout;
    hollow.proc.kill('SIGUSR1');
    await hollow.waitFor('heartbeats frozen');
    await new Promise((r) => setTimeout(r, 700));   // a renewal already in flight lands
    const frozenAt = await renewTime();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await renewTime(), frozenAt, 'no renewal while frozen');
    hollow.proc.kill('SIGUSR1');
    await hollow.waitFor('heartbeats resumed');
    await eventually(async () => (await renewTime()) !== frozenAt, 'a renewal after thawing', 5000);
  });

  await t.test('a restarted hollow process reuses its node passwords and credentials', async () => {
    const stored = readFileSync(join(dir, 'hollow', 'nodes', 'hollow-0.json'), 'utf8');
    await hollow.stop();
    assert.equal(await hollow.exited, 0, 'SIGTERM stops it cleanly');
    hollow = spawnHollow(server, token, args, dir);
    await hollow.waitFor('hollow: 3 nodes ready');
    assert.equal(readFileSync(join(dir, 'hollow', 'nodes', 'hollow-0.json'), 'utf8'), stored, 'no new join was needed');
    const r = await server.kubectl(['get', 'nodes', '--no-headers']);
    assert.equal(r.stdout.trim().split('\n').filter((l) => /\sReady\s/.test(l)).length, 3, r.stdout);
  });
});

test('a token pinning another CA is refused before any secret is sent', async (t) => {
  const server = await startServer();
  const dir = newHollowDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const real = nodeToken(server);
  // The right password behind a wrong CA hash: had it been sent, the join would have succeeded.
  const forged = real.replace(/^K10([0-9a-f]{64})/, (_m, h: string) => `K10${h[0] === '0' ? '1' : '0'}${h.slice(1)}`);
  assert.notEqual(forged, real);
  const hollow = spawnHollow(server, forged, ['--count', '1'], dir);
  const code = await hollow.exited;
  assert.equal(code, 1);
  const log = readFileSync(hollow.logPath, 'utf8');
  assert.match(log, /does not match the hash in the token/);
  const secret = await server.kubectl(['get', 'secret', '-n', 'kube-system', 'hollow-0.node-password.skiff']);
  assert.match(secret.stderr, /not found/, 'no join reached the server');
  const nodes = await server.kubectl(['get', 'nodes', '-o', 'name']);
  assert.equal(nodes.stdout.trim(), '');
});
