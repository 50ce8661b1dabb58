// `skiff agent` end to end, as root with the real containerd: a node joins with the server's token,
// a Deployment's pods run as real containers, `kill -9` of the agent leaves them running and the
// restarted agent adopts them (same container IDs, restartCount unchanged), and a token pinning the
// wrong CA is refused before any secret is sent. Everything the test starts is torn down, even on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { writeBusyboxImage, TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';

const BRIDGE = 'skiffe2e0';
const NODE = 'agent-e2e';
let server: TestServer;
// Short: containerd's socket path must fit a unix socket address.
const agentDir = mkdtempSync('/tmp/skiff-ag-');
let agent: ChildProcess | undefined;

function requirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/bin/busybox']) if (!existsSync(bin)) missing.push(bin);
  return missing;
}

function startAgent(token: string, name = NODE, dir = agentDir): ChildProcess {
  const log = openSync(join(dir, 'agent.log'), 'a');
  try {
    return spawn(join(REPO_ROOT, 'bin', 'skiff'), ['agent', '--server', server.url, '--token', token, '--data-dir', dir,
      '--node-name', name, '--node-ip', '127.0.0.1', '--bridge-name', BRIDGE], { stdio: ['ignore', log, log] });
  } finally { closeSync(log); }
}

async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) {
      let tail = '';
      try { tail = readFileSync(join(agentDir, 'agent.log'), 'utf8').split('\n').slice(-25).join('\n'); } catch { /* no log */ }
      throw new Error(`timed out waiting for ${what}\n--- agent log tail\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const token = () => readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
const k = async (args: string[]) => ok(await server.kubectl(args));

before(async () => {
  const missing = requirements();
  if (missing.length) throw new Error(`the agent end-to-end test needs: ${missing.join(', ')}`);
  mkdirSync(join(agentDir, 'agent', 'images'), { recursive: true });
  writeBusyboxImage(join(agentDir, 'agent', 'images'), 'busybox.tar');
  server = await startServer();
});

after(async () => {
  agent?.kill('SIGKILL');
  await teardownRuntime({ dataDir: agentDir, removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
});

test('an agent joins, runs a Deployment as real containers, and adopts them after kill -9', async () => {
  agent = startAgent(token());
  await eventually(async () => / Ready /.test(await k(['get', 'node', NODE, '--no-headers'])), 'the node Ready');
  const node = JSON.parse(await k(['get', 'node', NODE, '-o', 'json']));
  assert.match(node.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
  assert.equal(node.metadata.labels['kubernetes.io/hostname'], NODE);

  await k(['create', 'deployment', 'web', '--image', TEST_IMAGE, '--replicas', '2', '--', 'sh', '-c', 'echo started; exec sleep 3600']);
  // The image's tag is not :latest, so the default pull policy (IfNotPresent) uses the imported image.
  ok(await server.kubectl(['rollout', 'status', 'deployment/web', '--timeout=90s'], { timeoutMs: 100_000 }));
  const pods = JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items;
  assert.equal(pods.length, 2);
  const ids = pods.map((p: any) => p.status.containerStatuses[0].containerID).sort();
  for (const p of pods) {
    assert.equal(p.status.phase, 'Running');
    assert.match(p.status.containerStatuses[0].containerID, /^containerd:\/\//);
    assert.match(p.status.podIP, /^10\.42\./);
  }
  const cri = new CriClient(join(agentDir, 'agent', 'containerd', 'containerd.sock'));
  try {
    const running = async () => (await cri.listContainers()).filter((c: any) => c.state === 'CONTAINER_RUNNING').map((c: any) => `containerd://${c.id}`).sort();
    assert.deepEqual((await running()).filter((id: string) => ids.includes(id)), ids, 'both containers run in containerd');

    agent!.kill('SIGKILL');
    await new Promise((r) => agent!.once('exit', r));
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual((await running()).filter((id: string) => ids.includes(id)), ids, 'containers survive the agent');

    agent = startAgent(token());
    await eventually(async () => / Ready /.test(await k(['get', 'node', NODE, '--no-headers'])), 'the node Ready again');
    await new Promise((r) => setTimeout(r, 3000));
    const after = JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items;
    assert.deepEqual(after.map((p: any) => p.status.containerStatuses[0].containerID).sort(), ids, 'same container IDs');
    for (const p of after) assert.equal(p.status.containerStatuses[0].restartCount, 0);
    assert.equal(after.length, 2, 'no duplicate pods');
  } finally {
    cri.close();
  }
});

test('a token pinning the wrong CA is refused before any secret is sent', async () => {
  const wrong = token().replace(/^K10[0-9a-f]{64}/, 'K10' + '0'.repeat(64));
  const dir = mkdtempSync('/tmp/skiff-ag-wrong-');
  try {
    const p = startAgent(wrong, 'agent-wrong-ca', dir);
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    assert.notEqual(code, 0);
    assert.match(readFileSync(join(dir, 'agent.log'), 'utf8'), /does not match the hash in the token/);
    assert.doesNotMatch(readFileSync(server.logPath, 'utf8'), /agent-wrong-ca/, 'the server never saw a join for that node');
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
});
