// `skiff server --datastore-endpoint postgres://...` against a real PostgreSQL (Debian's, started by
// the test with its own data dir, port and socket dir, removed afterwards): kubectl creates, lists,
// watches and deletes; a restart keeps everything; kill -9 right after acknowledged writes loses
// none; PostgreSQL stopped for 30 s gives errors, not an exit, and the server recovers by itself.
// Bad endpoints, wrong passwords and unreachable datastores are one clear error line at start.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { ApiClient, json } from '../helpers/api-client.js';
import { freePort, startPostgres, type PostgresServer } from '../helpers/postgres-server.js';

const COLL = '/api/v1/namespaces/default/configmaps';
let db: PostgresServer;
let server: TestServer | undefined;
const dataDirs: string[] = [];

before(async () => { db = await startPostgres(); });
after(async () => {
  await server?.dispose();
  await db?.destroy();
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

/** `skiff server` that must fail at start: its exit code and stderr. */
function failingStart(endpoint: string): { code: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-pg-bad-'));
  dataDirs.push(dir);
  const port = 20000 + (process.pid % 20000);
  const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), [
    'server', '--data-dir', dir, '--https-listen-port', String(port), '--bind-address', '127.0.0.1',
    '--write-kubeconfig', join(dir, 'kc.yaml'), '--disable-agent', '--datastore-endpoint', endpoint,
  ], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SKIFF_LOG_LEVEL: 'error' } });
  return { code: r.status, stderr: r.stderr };
}

test('bad endpoints, wrong password, unreachable datastore: one clear error line and a non-zero exit', async () => {
  const closed = await freePort();
  const cases: [string, RegExp][] = [
    [db.url().replace(/:[^:@/]+@/, ':wrong-password@'), /cannot use datastore postgres postgres@127\.0\.0\.1:\d+\/skiff: password authentication failed/],
    [`postgres://postgres:x@127.0.0.1:${closed}/skiff`, /cannot use datastore postgres .*ECONNREFUSED/],
    ['postgres://', /invalid datastore endpoint/],
    ['redis://127.0.0.1:6379', /invalid datastore endpoint "redis:\/\/127\.0\.0\.1:6379"/],
  ];
  for (const [endpoint, pattern] of cases) {
    const r = failingStart(endpoint);
    assert.notEqual(r.code, 0, `${endpoint}: exit ${r.code}`);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('skiff:'));
    assert.equal(lines.length, 1, `${endpoint}: ${r.stderr}`);
    assert.match(lines[0], pattern);
    assert.doesNotMatch(lines[0], /wrong-password|:x@/, 'the password is never printed');
  }
  // Nothing was written by the failed starts: the database they named does not exist.
  const admin = new pg.Client({ connectionString: db.url('postgres') });
  await admin.connect();
  try {
    assert.equal((await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'skiff'`)).rowCount, 0);
  } finally {
    await admin.end();
  }
});

test('kubectl on a postgres datastore: create, list, watch, delete; restart keeps everything; kill -9 loses no acknowledged write; outage recovers', async () => {
  // The database does not exist yet: the server creates it.
  server = await startServer({ args: ['--datastore-endpoint', db.url('skiff'), '--disable-controller-manager'] });
  const s = server;
  const watch = s.kubectlStream(['get', 'configmaps', '-w', '--output-watch-events', '-o', 'custom-columns=EV:.type,NAME:.object.metadata.name,V:.object.data.v']);
  try {
    ok(await s.kubectl(['create', 'configmap', 'one', '--from-literal=v=1']));
    ok(await s.kubectl(['create', 'configmap', 'two', '--from-literal=v=2']));
    await watch.waitFor(/ADDED\s+two\s+2/, 30_000);
    ok(await s.kubectl(['patch', 'configmap', 'one', '-p', '{"data":{"v":"11"}}']));
    await watch.waitFor(/MODIFIED\s+one\s+11/, 30_000);
    ok(await s.kubectl(['delete', 'configmap', 'two']));
    await watch.waitFor(/DELETED\s+two/, 30_000);
    const names = ok(await s.kubectl(['get', 'configmaps', '-o', 'jsonpath={.items[*].metadata.name}']));
    assert.deepEqual(names.split(' ').filter((n) => n !== 'kube-root-ca.crt').sort(), ['one']);
  } finally {
    await watch.stop();
  }
  // The rows are in PostgreSQL, with the "C" collation on the key column.
  const client = new pg.Client({ connectionString: db.url('skiff') });
  await client.connect();
  try {
    const col = await client.query(`SELECT collation_name FROM information_schema.columns WHERE table_name = 'kv' AND column_name = 'name'`);
    assert.equal(col.rows[0].collation_name, 'C');
    const rows = await client.query(`SELECT count(*)::int AS n FROM kv WHERE name LIKE '/core/configmaps/default/%'`);
    assert.ok(rows.rows[0].n >= 4, `${rows.rows[0].n} configmap rows`);
  } finally {
    await client.end();
  }

  // A restart keeps everything.
  await s.restart();
  assert.equal(ok(await s.kubectl(['get', 'configmap', 'one', '-o', 'jsonpath={.data.v}'])), '11');
  assert.match((await s.kubectl(['get', 'configmap', 'two'])).stderr, /NotFound/);

  // kill -9 right after acknowledged writes: none lost.
  const api = ApiClient.fromKubeconfig(s.kubeconfigPath);
  const acked = new Set<string>();
  let stop = false;
  let failures = 0;
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const name = `k9-${w}-${i}`;
      try {
        const r = await api.post(COLL, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: String(i) } });
        if (r.status === 201) acked.add(name); else failures++;
      } catch {
        return;
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));
  await eventually(async () => acked.size >= 100, '100 acknowledged creates', 60_000);
  await s.kill9();
  stop = true;
  await Promise.all(workers);
  api.close();
  assert.equal(failures, 0, 'creates failed before the kill');
  await s.launch();
  const api2 = ApiClient.fromKubeconfig(s.kubeconfigPath);
  try {
    const list = json(await api2.get(COLL));
    const present = new Set(list.items.map((o: any) => o.metadata.name));
    const lost = [...acked].filter((n) => !present.has(n));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged creates lost after kill -9`);
  } finally {
    api2.close();
  }

  // PostgreSQL stopped for 30 s (issue 13's outage): requests fail with errors, the server stays up, then recovers.
  const watch2 = s.kubectlStream(['get', 'configmaps', '-w', '--output-watch-events', '-o', 'custom-columns=EV:.type,NAME:.object.metadata.name']);
  try {
    await watch2.waitFor(/ADDED\s+one/, 30_000);
    await db.stop();
    const stoppedAt = Date.now();
    const during = await s.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'during-outage' } } });
    assert.equal(during.status, 503, during.body);
    assert.match(during.json().message, /postgres/);
    const kc = await s.kubectl(['create', 'configmap', 'during-outage-2'], { timeoutMs: 60_000 });
    assert.notEqual(kc.code, 0, 'kubectl create succeeded while the datastore was down');
    const ready = await s.request('GET', '/readyz');
    assert.notEqual(ready.status, 200, 'readyz says ready while the datastore is down');
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - stoppedAt))));
    assert.ok(s.running, `the server exited during the outage\n${s.logTail()}`);
    await db.start();
    await eventually(async () => {
      const r = await s.request('POST', COLL, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-outage' } } });
      return r.status === 201 || r.status === 409;
    }, 'a create to succeed after PostgreSQL is back', 60_000, () => s.logTail());
    await watch2.waitFor(/ADDED\s+after-outage/, 30_000);
    assert.equal(ok(await s.kubectl(['get', 'configmap', 'one', '-o', 'jsonpath={.data.v}'])), '11');
    await eventually(async () => (await s.request('GET', '/readyz')).status === 200, 'readyz after the outage', 60_000);
    assert.ok(s.running);
  } finally {
    await watch2.stop();
  }
});
