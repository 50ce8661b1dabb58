// Snapshots end to end with the real binary and kubectl: `skiff snapshot save` while the server runs
// and writes, `snapshot ls`, a restore refused while the server runs, then a restore after it stopped:
// the server comes back with the snapshot's objects (later changes gone), its old credentials still
// valid, and the replaced datastore kept beside it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';

let server: TestServer;
const skiff = (args: string[]) => spawnSync(join(REPO_ROOT, 'bin', 'skiff'), [...args, '--data-dir', server.dataDir], { encoding: 'utf8' });
const k = async (args: string[], input?: string) => ok(await server.kubectl(args, { input }));
const cm = (name: string, v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name} }\ndata: { v: "${v}" }\n`;

before(async () => { server = await startServer(); });
after(async () => { await server?.dispose(); });

test('save while running, restore after stopping: the snapshot\'s state comes back', async () => {
  await k(['apply', '-f', '-'], cm('keep', 'at-snapshot'));
  // Writes go on while the snapshot is taken: it must still be a consistent datastore.
  const writes = (async () => { for (let i = 0; i < 30; i++) await k(['apply', '-f', '-'], cm(`busy-${i}`, String(i))); })();
  const saved = skiff(['snapshot', 'save', '--name', 'nightly']);
  await writes;
  assert.equal(saved.status, 0, saved.stderr);
  const path = saved.stdout.trim();
  assert.match(path, new RegExp(`^${join(server.dataDir, 'server', 'db', 'snapshots')}/nightly-\\S+-\\d+$`));
  assert.equal(statSync(path).mode & 0o777, 0o700, 'the snapshot holds CA keys: root only');
  assert.ok(existsSync(join(path, 'tls')) && existsSync(join(path, 'token')));
  // k3s's columns: Name, Location, Size, Created.
  assert.match(skiff(['snapshot', 'ls']).stdout, /^Name\s+Location\s+Size\s+Created\n/);
  assert.match(skiff(['snapshot', 'ls']).stdout, /^nightly-\S+\s+file:\/\/\S+\s+\d+\s+\d{4}-\d\d-\d\dT\S+$/m);

  await k(['delete', 'configmap', 'keep']);
  await k(['apply', '-f', '-'], cm('later', 'after-snapshot'));
  const refused = skiff(['snapshot', 'restore', path]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /is running on .*: stop it before restoring/);

  const seenRv = (await server.request('GET', '/api/v1/namespaces/default/configmaps')).json().metadata.resourceVersion as string;
  assert.match(seenRv, /^\d+$/);
  await server.stop();
  const restored = skiff(['snapshot', 'restore', path]);
  assert.equal(restored.status, 0, restored.stderr);
  assert.ok(readdirSync(join(server.dataDir, 'server', 'db')).some((f) => f.startsWith('state.db.before-restore-')), 'the replaced datastore is kept');
  await server.launch();
  assert.equal(JSON.parse(await k(['get', 'configmap', 'keep', '-o', 'json'])).data.v, 'at-snapshot');
  assert.notEqual((await server.kubectl(['get', 'configmap', 'later'])).code, 0, 'changes after the snapshot are gone');
  // A watch resumed from before the restore is told to relist (410 Gone), not left silently stale.
  const resumed = await server.request('GET', `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${seenRv}&timeoutSeconds=2`);
  assert.ok(resumed.status === 410 || /"code":410/.test(resumed.body), `${resumed.status} ${resumed.body.slice(0, 300)}`);
  // And the server keeps working on the restored state.
  await k(['apply', '-f', '-'], cm('after-restore', 'ok'));
  await k(['get', 'configmap', 'after-restore']);
});

test('restoring something that is not a snapshot is refused', () => {
  const r = skiff(['snapshot', 'restore', '/tmp']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /is running|is not a snapshot/);
});
