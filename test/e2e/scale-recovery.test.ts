// A server restart with many nodes (issue 15): 200 hollow nodes run a Deployment's pods, the server
// is killed with SIGKILL and stays down for longer than the node monitor grace period, then starts
// again on the same data dir. As kube-controller-manager does, the restarted node lifecycle counts
// every node's grace period from its own start, not from the (now stale) Lease renewals, so: every
// node renews and is Ready again, no node is ever marked NotReady (watched through the restart), and
// no pod is evicted or recreated (same names, same UIDs); the restarted server's listening socket
// queues as many connections as the kernel allows. Functional only: how fast this happens is
// bench/scale.ts's figure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer, stopChild } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';
import { HttpClient } from '../../src/client/http.js';
import { Informer } from '../../src/client/informer.js';
import { Resources } from '../../src/client/types.js';
import type { KObject } from '../../src/api/object.js';
import { setLogLevel } from '../../src/util/log.js';
import { listenBacklog } from '../../src/util/listen-backlog.js';

type Obj = KObject & { spec?: any; status?: any };

const NODES = 200;
const REPLICAS = 300;
/** The node monitor grace period the server runs with: shorter than the default 40 s (as
 *  kube-controller-manager's) so that the test waits less, still six heartbeats long. */
const GRACE_SECONDS = 30;
const isReady = (o: Obj) => (o.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');

function logTail(path: string): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-20).join('\n'); } catch { return '(no log)'; }
}

test('kill -9 of the server with 200 hollow nodes: all Ready again, none NotReady meanwhile, no pod evicted or recreated', { timeout: 1_800_000 }, async (t) => {
  setLogLevel('error');   // the test's own watches warn while the server is down, as they should
  const server: TestServer = await startServer({ args: ['--node-monitor-grace-period', String(GRACE_SECONDS)] });
  const hollowDir = mkdtempSync(join(tmpdir(), `skiff-scale-recovery-${process.pid}-`));
  let hollow: ChildProcess | undefined;
  const informers: Informer<Obj>[] = [];
  const client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'scale-recovery-test', timeoutMs: 60_000 });
  t.after(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    client.close();
    await stopChild(hollow);
    await server.dispose();
    rmSync(hollowDir, { recursive: true, force: true });
  });

  // 200 nodes renewing every 5 s, in one `skiff hollow` process of the built CLI.
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const hollowLog = join(hollowDir, 'hollow.log');
  const fd = openSync(hollowLog, 'a');
  hollow = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'cli', 'main.js'), 'hollow', '--server', server.url, '--token', token,
    '--count', String(NODES), '--data-dir', hollowDir, '--heartbeat-interval', '5', '--node-status-interval', '30',
    '--pod-start-delay', '0', '--join-concurrency', '16', '--log-level', 'warn'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  let out = '';
  hollow.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  await eventually(async () => {
    if (hollow!.exitCode !== null) throw new Error(`skiff hollow exited with ${hollow!.exitCode}\n${logTail(hollowLog)}`);
    return out.includes(`hollow: ${NODES} nodes ready`);
  },
    `${NODES} hollow nodes to join`, 600_000, () => logTail(hollowLog));

  const ready = (i: Informer<Obj>) => i.list().filter(isReady).length;
  const nodes = new Informer<Obj>({ client, resource: Resources.nodes, backoff: { initialMs: 100, maxMs: 1000 } });
  const pods = new Informer<Obj>({ client, resource: Resources.pods, namespace: 'default', backoff: { initialMs: 100, maxMs: 1000 } });
  const leases = new Informer<Obj>({ client, resource: Resources.leases, namespace: 'kube-node-lease', backoff: { initialMs: 100, maxMs: 1000 } });
  informers.push(nodes, pods, leases);
  for (const i of informers) i.start();
  await Promise.all(informers.map((i) => i.waitForSync(60_000)));
  await eventually(async () => ready(nodes) === NODES, `all ${NODES} nodes Ready`, 120_000);

  await client.create(Resources.deployments, 'default', {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'fleet', namespace: 'default' },
    spec: {
      replicas: REPLICAS, selector: { matchLabels: { app: 'fleet' } },
      template: { metadata: { labels: { app: 'fleet' } }, spec: { containers: [{ name: 'app', image: 'registry.local/pause:3.9' }] } },
    },
  });
  const running = () => pods.list().filter((p) => p.status?.phase === 'Running' && isReady(p) && !p.metadata.deletionTimestamp).length;
  await eventually(async () => running() === REPLICAS, `${REPLICAS} pods Running`, 400_000,
    () => `${running()} Running, ${pods.list().filter((p) => p.spec?.nodeName).length} scheduled, ${pods.list().length} pods\n${logTail(server.logPath)}`);
  // Settled: the Deployment reports them all available, so no controller has work left.
  await eventually(async () => (await client.get<Obj>(Resources.deployments, 'default', 'fleet'))?.status?.availableReplicas === REPLICAS,
    'the Deployment available', 60_000);
  const before = new Map(pods.list().map((p) => [String(p.metadata.name), String(p.metadata.uid)]));
  assert.equal(before.size, REPLICAS);

  // From here on, any node seen not Ready, and any pod deleted, is a failure.
  const notReady = new Set<string>();
  const deleted = new Set<string>();
  nodes.addHandlers({ onUpdate: (_old, n) => { if (!isReady(n)) notReady.add(String(n.metadata.name)); } });
  pods.addHandlers({ onDelete: (p) => deleted.add(String(p.metadata.name)) });

  const killedAt = Date.now();
  await server.kill9();
  // Down for longer than the grace period: judged by their Lease times alone, every node would be overdue.
  await new Promise((r) => setTimeout(r, (GRACE_SECONDS + 5) * 1000));
  await server.launch();
  const relaunchedAt = Date.now();
  // Every node reconnects at once: the listening socket queues as many handshakes as the kernel
  // allows (net.core.somaxconn, as Go's servers ask), not Node's default 511.
  const port = new URL(server.url).port;
  const listen = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/);
  assert.equal(Number(listen[2]), listenBacklog(), `listen queue of :${port}: ${listen.join(' ')}`);

  const renewedSinceKill = () => leases.list().filter((l) => Date.parse(String(l.spec?.renewTime)) > killedAt).length;
  await eventually(async () => renewedSinceKill() === NODES && ready(nodes) === NODES, 'every node renewed its Lease and Ready after the restart',
    180_000, () => `${renewedSinceKill()} renewed, ${ready(nodes)} Ready\n${logTail(server.logPath)}`);
  // Past a grace period of the restarted server and then some: a wrongly judged node would show by now.
  await eventually(async () => Date.now() - relaunchedAt > (GRACE_SECONDS + 10) * 1000, 'a grace period', 120_000);

  assert.deepEqual([...notReady], [], 'no node was marked NotReady through the restart');
  assert.deepEqual([...deleted], [], 'no pod was deleted');
  const nodeList = await client.list<Obj>(Resources.nodes);
  assert.equal(nodeList.items.length, NODES);
  for (const n of nodeList.items) {
    assert.ok(isReady(n), `${n.metadata.name} Ready`);
    const taints = (n.spec?.taints ?? []).map((x: any) => x.key);
    assert.ok(!taints.some((k: string) => k.startsWith('node.kubernetes.io/')), `${n.metadata.name} has no condition taints: ${taints}`);
  }
  const after = await client.list<Obj>(Resources.pods, 'default');
  const now = new Map(after.items.map((p) => [String(p.metadata.name), String(p.metadata.uid)]));
  assert.deepEqual(now, before, 'the same pods with the same UIDs');
  for (const p of after.items) {
    assert.equal(p.metadata.deletionTimestamp, undefined, `${p.metadata.name} not terminating`);
    assert.equal(p.status?.phase, 'Running', `${p.metadata.name} Running`);
    assert.ok(isReady(p), `${p.metadata.name} still Ready`);
  }
});
