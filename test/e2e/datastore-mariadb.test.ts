// `skiff server --datastore-endpoint mysql://user:pass@tcp(host:port)/db` against a real MariaDB
// (Debian's, started by the test, removed afterwards): kubectl creates, watches and deletes, a
// restart keeps everything, a wrong password is one clear error line, and MariaDB stopped for a few
// seconds gives errors without an exit, then recovers.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { startMariadb, type MariadbServer } from '../helpers/mariadb-server.js';

const COLL = '/api/v1/namespaces/default/configmaps';
let db: MariadbServer;
let server: TestServer | undefined;
let badDir: string | undefined;

before(async () => { db = await startMariadb(); });
after(async () => {
  await server?.dispose();
  await db?.destroy();
  if (badDir) rmSync(badDir, { recursive: true, force: true });
});

test('wrong password on a mysql endpoint: one clear error line, non-zero exit', () => {
  badDir = mkdtempSync(join(tmpdir(), 'skiff-maria-bad-'));
  const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), [
    'server', '--data-dir', badDir, '--https-listen-port', '1', '--bind-address', '127.0.0.1', '--disable-agent',
    '--write-kubeconfig', join(badDir, 'kc.yaml'), '--datastore-endpoint', db.url().replace(/:[^:@/]+@/, ':nope@'),
  ], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SKIFF_LOG_LEVEL: 'error' } });
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('skiff:'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /cannot use datastore mysql skiff@127\.0\.0\.1:\d+\/skiff: Access denied/);
  assert.doesNotMatch(lines[0], /nope/);
});

test('kubectl on a MariaDB datastore: create, watch, delete; restart keeps everything; outage recovers', async () => {
  server = await startServer({ args: ['--datastore-endpoint', db.url('skiff_e2e'), '--disable-controller-manager'] });
  const s = server;
  const watch = s.kubectlStream(['get', 'configmaps', '-w', '--output-watch-events', '-o', 'custom-columns=EV:.type,NAME:.object.metadata.name']);
  try {
    ok(await s.kubectl(['create', 'configmap', 'one', '--from-literal=v=1']));
    ok(await s.kubectl(['create', 'configmap', 'two']));
    await watch.waitFor(/ADDED\s+two/, 30_000);
    ok(await s.kubectl(['delete', 'configmap', 'two']));
    await watch.waitFor(/DELETED\s+two/, 30_000);
  } finally {
    await watch.stop();
  }
  await s.restart();
  assert.equal(ok(await s.kubectl(['get', 'configmap', 'one', '-o', 'jsonpath={.data.v}'])), '1');
  assert.match((await s.kubectl(['get', 'configmap', 'two'])).stderr, /NotFound/);

  await db.stop();
  const during = await s.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'during' } } });
  assert.equal(during.status, 503, during.body);
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(s.running, `the server exited during the outage\n${s.logTail()}`);
  await db.start();
  await eventually(async () => {
    const r = await s.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after' } } });
    return r.status === 201 || r.status === 409;
  }, 'a create to succeed after MariaDB is back', 60_000, () => s.logTail());
  assert.equal(ok(await s.kubectl(['get', 'configmap', 'after', '-o', 'name'])).trim(), 'configmap/after');
});
