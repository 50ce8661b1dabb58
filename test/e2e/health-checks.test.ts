// Issue 8: /healthz, /livez and /readyz report checks that check. The verbose pages list Kubernetes'
// check names; a datastore that stops taking writes (another process holds SQLite's write lock, as a
// stray `sqlite3` on the file would) turns etcd red with HTTP 500 on /livez and /readyz, and green
// again once the lock is gone.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
before(async () => { server = await startServer(); });

const get = (path: string) => server.request('GET', path, { noAuth: true });

const READYZ = ['ping', 'log', 'etcd', 'etcd-readiness', 'informer-sync', 'poststarthook/bootstrap-controller', 'poststarthook/start-controller-manager', 'shutdown'];
const LIVEZ = ['ping', 'log', 'etcd', 'poststarthook/bootstrap-controller', 'poststarthook/start-controller-manager'];

function checkLines(body: string): string[] {
  return body.split('\n').filter((l) => l.startsWith('[+]') || l.startsWith('[-]'));
}

test('verbose pages list every check by its Kubernetes name, all passing', async () => {
  for (const [path, names] of [['/readyz', READYZ], ['/livez', LIVEZ], ['/healthz', LIVEZ]] as const) {
    const r = await get(`${path}?verbose`);
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    assert.deepEqual(checkLines(r.body), names.map((n) => `[+]${n} ok`), path);
    assert.equal(r.body.trimEnd().split('\n').at(-1), `${path.slice(1)} check passed`);
    const plain = await get(path);
    assert.equal(plain.status, 200);
    assert.equal(plain.body, 'ok');
  }
});

test('one check by path, exclusions and unknown names', async () => {
  const one = await get('/readyz/etcd');
  assert.equal(one.status, 200);
  assert.equal(one.body, 'ok');
  assert.equal((await get('/livez/ping')).body, 'ok');
  assert.equal((await get('/readyz/no-such-check')).status, 404);

  const ex = await get('/readyz?verbose&exclude=etcd&exclude=no-such-check');
  assert.equal(ex.status, 200, ex.body);
  assert.match(ex.body, /^\[\+\]etcd excluded: ok$/m);
  assert.match(ex.body, /^\[\+\]etcd-readiness ok$/m);
  assert.match(ex.body, /^warn: some health checks cannot be excluded: no matches for "no-such-check"$/m);
});

test('a datastore that refuses writes turns etcd red on /livez and /readyz, and green again', async (t) => {
  assert.equal(spawnSync('sqlite3', ['-version']).status, 0, 'this test needs the sqlite3 command-line tool (Debian: sqlite3)');
  const db = join(server.dataDir, 'server', 'db', 'state.db');
  // Another connection holds the write lock: every commit of the server waits out its busy timeout
  // and fails with "database is locked", as with any foreign writer stuck on the file.
  const locker: ChildProcessWithoutNullStreams = spawn('sqlite3', [db]);
  t.after(() => { if (locker.exitCode === null) locker.kill('SIGKILL'); });
  let out = '';
  locker.stdout.on('data', (d) => { out += String(d); });
  locker.stdin.write("BEGIN IMMEDIATE;\nINSERT INTO meta (k, v) VALUES ('test-lock', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1;\nSELECT 'locked';\n");
  await eventually(async () => out.includes('locked'), 'sqlite3 to hold the write lock', 30_000);

  const readyz = await eventually(async () => {
    const r = await get('/readyz?verbose');
    return r.status === 500 && r.body.includes('[-]etcd failed') ? r : undefined;
  }, '/readyz to report the datastore', 120_000, () => server.logTail());
  const lines = checkLines(readyz.body);
  assert.ok(lines.includes('[-]etcd failed: reason withheld'), readyz.body);
  assert.ok(lines.includes('[-]etcd-readiness failed: reason withheld'), readyz.body);
  assert.ok(lines.includes('[+]ping ok'), readyz.body);
  assert.equal(readyz.body.trimEnd().split('\n').at(-1), 'readyz check failed');
  assert.doesNotMatch(readyz.body, /locked/, 'the reason is not shown to unauthenticated callers');

  const livez = await get('/livez');
  assert.equal(livez.status, 500, livez.body);
  assert.ok(checkLines(livez.body).includes('[-]etcd failed: reason withheld'), livez.body);
  assert.equal(livez.body.trimEnd().split('\n').at(-1), 'livez check failed');
  const one = await get('/livez/etcd');
  assert.equal(one.status, 500);
  assert.match(one.body, /^internal server error: .*locked/);

  locker.stdin.end('ROLLBACK;\n.quit\n');
  await eventually(async () => {
    const r = await get('/readyz');
    return r.status === 200 && r.body === 'ok';
  }, '/readyz to recover once the lock is released', 120_000, () => server.logTail());
  assert.equal((await get('/livez')).status, 200);
});
