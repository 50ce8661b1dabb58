// etcd as skiff's datastore, end to end with the built CLI and real kubectl:
//  - an external etcd (Debian's, started by the test with TLS and client-certificate auth) through
//    --datastore-endpoint https://... and --datastore-cafile/-certfile/-keyfile; stopped for a while,
//    the server answers 503 and recovers;
//  - bad input: a malformed endpoint, a client certificate etcd does not trust, an unreachable etcd,
//    a joining server with the wrong token: one clear error line each, nothing written;
//  - embedded etcd (--cluster-init) on a server that ran on SQLite: every object is migrated; kill -9
//    of the etcd child: the server answers errors, restarts it and recovers;
//  - three servers with embedded etcd on loopback (own ports and data dirs): each its own member, a
//    write on one is read on the others.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { freePort, startEtcd, type EtcdServer } from '../helpers/datastores.js';

const COLL = '/api/v1/namespaces/default/configmaps';
const servers: TestServer[] = [];
const dirs: string[] = [];
let external: EtcdServer | undefined;

after(async () => {
  for (const s of servers.reverse()) await s.dispose().catch(() => {});
  await external?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `skiff-etcd-${tag}-${process.pid}-`));
  dirs.push(d);
  return d;
}

/** `skiff server` that must fail at start: its stderr lines starting with `skiff:`. */
function failingStart(args: string[]): { code: number | null; lines: string[]; stderr: string } {
  const dir = tempDir('bad');
  const port = 20000 + (process.pid % 20000);
  const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), [
    'server', '--data-dir', dir, '--https-listen-port', String(port), '--bind-address', '127.0.0.1',
    '--write-kubeconfig', join(dir, 'kc.yaml'), '--disable-agent', ...args,
  ], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, SKIFF_LOG_LEVEL: 'error' } });
  return { code: r.status, stderr: r.stderr, lines: r.stderr.trim().split('\n').filter((l) => l.startsWith('skiff:')) };
}

function etcdClient(e: EtcdServer, cert = e.tls!.clientCert, key = e.tls!.clientKey): Etcd3 {
  return new Etcd3({ hosts: e.url, credentials: { rootCertificate: readFileSync(e.tls!.ca), certChain: readFileSync(cert), privateKey: readFileSync(key) } });
}

/** A client for a server's embedded etcd, with the API server's own credentials. */
function embeddedClient(s: TestServer, port: number): Etcd3 {
  const d = join(s.dataDir, 'server', 'tls', 'etcd');
  return new Etcd3({ hosts: `https://127.0.0.1:${port}`, credentials: { rootCertificate: readFileSync(join(d, 'server-ca.crt')), certChain: readFileSync(join(d, 'client.crt')), privateKey: readFileSync(join(d, 'client.key')) } });
}

test('external etcd over TLS: kubectl works, objects are etcd keys with etcd revisions; bad endpoints and credentials fail with one clear line', async () => {
  external = await startEtcd(undefined, { tls: true });
  const e = external;
  const tlsFlags = ['--datastore-cafile', e.tls!.ca, '--datastore-certfile', e.tls!.clientCert, '--datastore-keyfile', e.tls!.clientKey];
  const closed = await freePort();
  const cases: [string[], RegExp][] = [
    [['--datastore-endpoint', `${e.url}/v3/kv`, ...tlsFlags], /invalid etcd datastore endpoint .*a path or query is not allowed/],
    [['--datastore-endpoint', 'https://', ...tlsFlags], /invalid etcd datastore endpoint/],
    [['--datastore-endpoint', e.url, '--datastore-cafile', e.tls!.ca, '--datastore-certfile', e.tls!.otherClientCert, '--datastore-keyfile', e.tls!.otherClientKey], /cannot reach etcd at https:\/\/127\.0\.0\.1:\d+: /],
    [['--datastore-endpoint', `https://127.0.0.1:${closed}`, ...tlsFlags], /cannot reach etcd at https:\/\/127\.0\.0\.1:\d+: /],
    [['--datastore-endpoint', e.url, '--datastore-cafile', '/nonexistent/ca.crt'], /--datastore-cafile \/nonexistent\/ca\.crt: no such file/],
  ];
  for (const [args, pattern] of cases) {
    const r = failingStart(args);
    assert.notEqual(r.code, 0, `${args.join(' ')}: exit ${r.code}`);
    assert.equal(r.lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.lines[0], pattern);
  }
  // Nothing was written by the failed starts.
  const c = etcdClient(e);
  try {
    assert.equal(await c.getAll().prefix('/skiff/').count(), 0);
  } finally {
    c.close();
  }

  const s = await startServer({ args: ['--datastore-endpoint', e.url, ...tlsFlags, '--disable-controller-manager'] });
  servers.push(s);
  const watch = s.kubectlStream(['get', 'configmaps', '-w', '--output-watch-events', '-o', 'custom-columns=EV:.type,NAME:.object.metadata.name,V:.object.data.v']);
  try {
    ok(await s.kubectl(['create', 'configmap', 'one', '--from-literal=v=1']));
    await watch.waitFor(/ADDED\s+one\s+1/, 30_000);
    ok(await s.kubectl(['patch', 'configmap', 'one', '-p', '{"data":{"v":"2"}}']));
    await watch.waitFor(/MODIFIED\s+one\s+2/, 30_000);
  } finally {
    await watch.stop();
  }
  // The object is an etcd key; its resourceVersion is the key's etcd mod_revision.
  const rv = ok(await s.kubectl(['get', 'configmap', 'one', '-o', 'jsonpath={.metadata.resourceVersion}']));
  const c2 = etcdClient(e);
  try {
    const res = await c2.kv.range({ key: Buffer.from('/skiff/core/configmaps/default/one') });
    assert.equal(res.kvs.length, 1);
    assert.equal(res.kvs[0].mod_revision, rv);
  } finally {
    c2.close();
  }
  await s.restart();
  assert.equal(ok(await s.kubectl(['get', 'configmap', 'one', '-o', 'jsonpath={.data.v}'])), '2');

  // etcd stopped for ~10 s: writes answer 503 with etcd's words, the server stays up, then recovers.
  await e.stop();
  const during = await s.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'during-outage' } } });
  assert.equal(during.status, 503, during.body);
  assert.match(during.json().message, /^etcd /);
  assert.notEqual((await s.request('GET', '/readyz')).status, 200, 'readyz says ready while etcd is down');
  await new Promise((r) => setTimeout(r, 10_000));
  assert.ok(s.running, `the server exited during the outage\n${s.logTail()}`);
  await e.start();
  await eventually(async () => {
    const r = await s.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-outage' } } });
    return r.status === 201 || r.status === 409;
  }, 'a create to succeed after etcd is back', 90_000, () => s.logTail());
  assert.equal(ok(await s.kubectl(['get', 'configmap', 'after-outage', '-o', 'jsonpath={.metadata.name}'])), 'after-outage');
  await s.dispose();
});

test('embedded etcd: an SQLite server restarted with --cluster-init keeps every object; kill -9 of etcd is survived; three servers share it', async () => {
  const [c1, p1, c2, p2, c3, p3] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const etcdFlags = (c: number, p: number) => ['--etcd-client-port', String(c), '--etcd-peer-port', String(p), '--node-ip', '127.0.0.1'];
  // 1. SQLite first.
  const a0 = await startServer({ args: ['--disable-controller-manager'] });
  servers.push(a0);
  for (let i = 0; i < 20; i++) ok(await a0.kubectl(['create', 'configmap', `pre-${i}`, `--from-literal=i=${i}`]));
  ok(await a0.kubectl(['create', 'namespace', 'kept']));
  ok(await a0.kubectl(['-n', 'kept', 'create', 'secret', 'generic', 's', '--from-literal=k=v']));
  const before = ok(await a0.kubectl(['get', 'configmaps,secrets,namespaces', '-A', '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}{end}'])).split('\n').sort();
  await a0.stop();

  // 2. Restart with --cluster-init: migrated into the embedded etcd, the SQLite file kept aside.
  const a = await startServer({ dataDir: a0.dataDir, port: a0.port, args: ['--disable-controller-manager', '--cluster-init', ...etcdFlags(c1, p1)] });
  servers.push(a);
  const afterMigration = ok(await a.kubectl(['get', 'configmaps,secrets,namespaces', '-A', '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}{end}'])).split('\n').sort();
  assert.deepEqual(afterMigration, before);
  assert.equal(ok(await a.kubectl(['get', 'configmap', 'pre-7', '-o', 'jsonpath={.data.i}'])), '7');
  assert.ok(existsSync(join(a.dataDir, 'server', 'db', 'state.db.migrated')));
  assert.ok(!existsSync(join(a.dataDir, 'server', 'db', 'state.db')));
  assert.ok(existsSync(join(a.dataDir, 'server', 'db', 'etcd', 'member')));
  const ea = embeddedClient(a, c1);
  try {
    assert.equal(await ea.getAll().prefix('/skiff/core/configmaps/default/pre-').count(), 20);
  } finally {
    ea.close();
  }

  // 3. kill -9 of the etcd child: errors while it is down, then the server restarts it and recovers.
  const pid = Number(readFileSync(join(a.dataDir, 'server', 'db', 'etcd.pid'), 'utf8'));
  assert.ok(pid > 0);
  process.kill(pid, 'SIGKILL');
  await eventually(async () => {
    const r = await a.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `during-${Date.now()}` } } });
    return r.status >= 500;
  }, 'a write to fail while etcd is down', 30_000, () => a.logTail());
  await eventually(async () => {
    const r = await a.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-etcd-kill' } } });
    return r.status === 201 || r.status === 409;
  }, 'writes to succeed after the etcd child is restarted', 120_000, () => a.logTail());
  assert.ok(a.running, 'the server exited');
  assert.match(readFileSync(a.logPath, 'utf8'), /embedded etcd exited; restarting it/);
  assert.equal(ok(await a.kubectl(['get', 'configmap', 'pre-3', '-o', 'jsonpath={.data.i}'])), '3');

  // 4. A server with the wrong token: one clear error, no member added.
  const token = readFileSync(join(a.dataDir, 'server', 'token'), 'utf8').trim();
  const wrong = token.replace(/:[^:]+$/, ':not-the-password');
  const bad = failingStart(['--server', a.url, '--token', wrong, ...etcdFlags(await freePort(), await freePort())]);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.lines.length, 1, bad.stderr);
  assert.match(bad.lines[0], /joining https:\/\/127\.0\.0\.1:\d+: refused \(HTTP 401\): invalid join token/);
  assert.doesNotMatch(bad.lines[0], /not-the-password/);
  assert.ok(!existsSync(join(dirs[dirs.length - 1], 'server', 'db', 'etcd')), 'the refused server wrote an etcd dir');
  const ea2 = embeddedClient(a, c1);
  try {
    assert.equal((await ea2.cluster.memberList({})).members.length, 1);
  } finally {
    ea2.close();
  }

  // 5. Two more servers join: three members; a write on any is read on the others.
  const b = await startServer({ args: ['--disable-controller-manager', '--server', a.url, '--token', token, ...etcdFlags(c2, p2)] });
  servers.push(b);
  const c = await startServer({ args: ['--disable-controller-manager', '--server', a.url, '--token', token, ...etcdFlags(c3, p3)] });
  servers.push(c);
  const ec = embeddedClient(c, c3);
  try {
    const { members } = await ec.cluster.memberList({});
    assert.equal(members.length, 3);
    assert.ok(members.every((m) => !m.isLearner && m.name), JSON.stringify(members));
  } finally {
    ec.close();
  }
  ok(await b.kubectl(['create', 'configmap', 'from-b', '--from-literal=v=b']));
  for (const s of [a, c]) {
    await eventually(async () => (await s.kubectl(['get', 'configmap', 'from-b', '-o', 'jsonpath={.data.v}'])).stdout === 'b', 'B\'s write on another server', 30_000);
  }
  ok(await c.kubectl(['create', 'configmap', 'from-c', '--from-literal=v=c']));
  await eventually(async () => (await a.kubectl(['get', 'configmap', 'from-c', '-o', 'jsonpath={.data.v}'])).stdout === 'c', 'C\'s write on A', 30_000);
  // The migrated objects are on every server.
  assert.equal(ok(await c.kubectl(['get', 'configmap', 'pre-19', '-o', 'jsonpath={.data.i}'])), '19');
  // Compare-and-swap holds across servers: the same resourceVersion updated on two servers, one wins.
  const rv = ok(await a.kubectl(['get', 'configmap', 'from-b', '-o', 'jsonpath={.metadata.resourceVersion}']));
  const put = (s: TestServer, v: string) => s.request('PUT', `${COLL}/from-b`, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'from-b', resourceVersion: rv }, data: { v } } });
  const [ra, rc] = await Promise.all([put(a, 'a'), put(c, 'c')]);
  assert.deepEqual([ra.status, rc.status].sort(), [200, 409]);
  // Restarting a joined server: it keeps its member and data.
  await b.restart();
  assert.equal(ok(await b.kubectl(['get', 'configmap', 'from-c', '-o', 'jsonpath={.data.v}'])), 'c');
});
