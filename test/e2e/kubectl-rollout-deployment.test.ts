// Acceptance (issue 3): Deployments driven by the real kubectl 1.32 against `skiff server` with hollow
// nodes: create, scale, set image + rollout status + rollout undo reaching the expected ReplicaSets
// and revisions, wait --for=condition=Available, rollout history, pause/resume, restart, and a server
// restart mid-rollout that completes without duplicate pods. (Deletion with each propagation policy
// is covered by kubectl-delete-propagation-deployment.test.ts, next to the garbage collector.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer, stopChild } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';

let server: TestServer;
let hollow: ChildProcess | undefined;
const hollowDir = mkdtempSync(join(tmpdir(), 'skiff-rollout-hollow-'));

process.on('exit', () => { hollow?.kill('SIGKILL'); rmSync(hollowDir, { recursive: true, force: true }); });

/** Two hollow nodes that report pods Running and Ready shortly after they are bound. */
async function startHollow(): Promise<void> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const logFd = openSync(join(hollowDir, 'hollow.log'), 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
  const proc = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'hollow',
    '--server', server.url, '--token', token, '--data-dir', hollowDir, '--count', '2', '--name-prefix', 'rollout-',
    '--pod-start-delay', '200', '--heartbeat-interval', '2'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  hollow = proc;
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hollow nodes not ready\n${hollowLog()}`)), 120_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('nodes ready')) { clearTimeout(timer); resolve(); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`skiff hollow exited (${code})\n${hollowLog()}`)); });
  });
}

function hollowLog(): string {
  try { return readFileSync(join(hollowDir, 'hollow.log'), 'utf8').trimEnd().split('\n').slice(-20).join('\n'); } catch { return '(no log)'; }
}

before(async () => {
  server = await startServer();
  await startHollow();
});
after(async () => {
  await stopChild(hollow);
  rmSync(hollowDir, { recursive: true, force: true });
});

async function kubectl(...args: string[]): Promise<string> {
  return ok(await server.kubectl(args, { timeoutMs: 120_000 }), `kubectl ${args.join(' ')}`);
}

async function json(...args: string[]): Promise<any> {
  return JSON.parse(await kubectl(...args, '-o', 'json'));
}

async function replicaSets(app: string): Promise<any[]> {
  return (await json('get', 'replicasets', '-l', `app=${app}`)).items;
}

async function livePods(app: string): Promise<any[]> {
  return (await json('get', 'pods', '-l', `app=${app}`)).items.filter((p: any) => !p.metadata.deletionTimestamp);
}

const revision = (o: any): string => o.metadata.annotations?.['deployment.kubernetes.io/revision'];
const byRevision = (rss: any[]) => Object.fromEntries(rss.map((rs) => [revision(rs), rs]));

async function rolloutStatus(name: string): Promise<void> {
  const out = await kubectl('rollout', 'status', `deployment/${name}`, '--timeout=90s');
  assert.match(out, new RegExp(`deployment "${name}" successfully rolled out`));
}

async function settled(fn: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('create, wait Available, scale, set image, history and undo reach the expected ReplicaSets and revisions', async () => {
  await kubectl('create', 'deployment', 'web', '--image=busybox:1', '--replicas=3');
  await rolloutStatus('web');
  assert.match(await kubectl('wait', '--for=condition=Available', 'deployment/web', '--timeout=60s'), /deployment.apps\/web condition met/);
  let rss = await replicaSets('web');
  assert.equal(rss.length, 1);
  const first = rss[0];
  assert.equal(first.metadata.name, `web-${first.metadata.labels['pod-template-hash']}`);
  assert.equal(revision(first), '1');
  const table = await kubectl('get', 'deployment', 'web');
  assert.match(table, /web\s+3\/3\s+3\s+3\s+/);

  await kubectl('scale', 'deployment', 'web', '--replicas=5');
  await rolloutStatus('web');
  rss = await replicaSets('web');
  assert.equal(rss.length, 1, 'scaling makes no new ReplicaSet');
  assert.equal(rss[0].spec.replicas, 5);

  await kubectl('set', 'image', 'deployment/web', 'busybox=busybox:2');
  await rolloutStatus('web');
  rss = await replicaSets('web');
  assert.equal(rss.length, 2);
  assert.equal(byRevision(rss)['1'].spec.replicas, 0);
  assert.equal(byRevision(rss)['2'].spec.replicas, 5);
  assert.equal(byRevision(rss)['2'].spec.template.spec.containers[0].image, 'busybox:2');
  assert.equal((await livePods('web')).length, 5);
  const history = await kubectl('rollout', 'history', 'deployment/web');
  assert.match(history, /REVISION\s+CHANGE-CAUSE\s*\n1\s+<none>\s*\n2\s+<none>/);

  assert.match(await kubectl('rollout', 'undo', 'deployment/web'), /deployment.apps\/web rolled back/);
  await rolloutStatus('web');
  rss = await replicaSets('web');
  assert.equal(rss.length, 2, 'undo reuses the old ReplicaSet');
  const back = rss.find((rs) => rs.metadata.name === first.metadata.name);
  assert.equal(revision(back), '3');
  assert.equal(back.metadata.annotations['deployment.kubernetes.io/revision-history'], '1');
  assert.equal(back.spec.replicas, 5);
  const d = await json('get', 'deployment', 'web');
  assert.equal(revision(d), '3');
  assert.equal(d.spec.template.spec.containers[0].image, 'busybox:1');
  assert.match(await kubectl('rollout', 'history', 'deployment/web'), /\n2\s+<none>\s*\n3\s+<none>/);
  assert.match(await kubectl('rollout', 'history', 'deployment/web', '--revision=2'), /Image:\s+busybox:2/);
});

test('pause holds a change back, resume rolls it out, restart makes a new revision', async () => {
  await kubectl('create', 'deployment', 'pz', '--image=busybox:1', '--replicas=2');
  await rolloutStatus('pz');
  assert.match(await kubectl('rollout', 'pause', 'deployment/pz'), /paused/);
  await kubectl('set', 'image', 'deployment/pz', 'busybox=busybox:2');
  await settled(async () => {
    const d = await json('get', 'deployment', 'pz');
    const c = (d.status.conditions ?? []).find((x: any) => x.type === 'Progressing');
    return d.status.observedGeneration === d.metadata.generation && c?.reason === 'DeploymentPaused';
  }, 'the paused condition');
  assert.equal((await replicaSets('pz')).length, 1, 'no rollout while paused');

  assert.match(await kubectl('rollout', 'resume', 'deployment/pz'), /resumed/);
  await rolloutStatus('pz');
  assert.equal(revision(await json('get', 'deployment', 'pz')), '2');
  // kubectl refuses to roll a paused Deployment back (checked client-side, once there is history).
  await kubectl('rollout', 'pause', 'deployment/pz');
  const undo = await server.kubectl(['rollout', 'undo', 'deployment/pz']);
  assert.notEqual(undo.code, 0);
  assert.match(undo.stderr, /cannot rollback a paused deployment; resume it first/);
  await kubectl('rollout', 'resume', 'deployment/pz');

  assert.match(await kubectl('rollout', 'restart', 'deployment/pz'), /restarted/);
  await rolloutStatus('pz');
  const rss = await replicaSets('pz');
  assert.equal(rss.length, 3);
  const newest = byRevision(rss)['3'];
  assert.ok(newest.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'], 'restart stamps the template');
  assert.equal((await livePods('pz')).length, 2);
});

test('a server restart in the middle of a rollout completes it without duplicate pods', async () => {
  await kubectl('create', 'deployment', 'mid', '--image=busybox:1', '--replicas=6');
  await rolloutStatus('mid');
  await kubectl('patch', 'deployment', 'mid', '-p', '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":2,"maxUnavailable":0}}}}');
  await kubectl('set', 'image', 'deployment/mid', 'busybox=busybox:2');
  await settled(async () => (await replicaSets('mid')).length === 2, 'the new ReplicaSet', 30_000);
  await server.restart();
  await rolloutStatus('mid');
  const rss = await replicaSets('mid');
  assert.equal(rss.length, 2);
  assert.equal(byRevision(rss)['2'].spec.replicas, 6);
  assert.equal(byRevision(rss)['1'].spec.replicas, 0);
  await settled(async () => (await livePods('mid')).length === 6, 'exactly 6 pods');
  const images = new Set((await livePods('mid')).map((p) => p.spec.containers[0].image));
  assert.deepEqual([...images], ['busybox:2']);
});
