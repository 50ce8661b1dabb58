// Three servers on one datastore (embedded etcd: one member each, so they share the cluster's CAs and
// one set of credentials works on all), hollow nodes, and `kill -9` of the server that leads the
// control loops while a client writes through every server:
//   - leader election: exactly one server holds kube-system/kube-controller-manager (and
//     kube-scheduler); after the kill another takes both Leases and its loops act (a Deployment
//     scaled after the kill converges: its new pods are made by the new leader's ReplicaSet
//     controller and bound by its scheduler);
//   - no acknowledged write is lost, writes go on through the other servers, and a watch on a
//     surviving server saw every acknowledged write;
//   - the hollow nodes (joined through a surviving server) never turn NotReady: the new leader's node
//     lifecycle loop gives them a fresh grace period instead of judging the takeover gap as silence;
//   - the `kubernetes` endpoints list the three servers, then drop the dead one.
// No duration is asserted; the failover time is printed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, freePort, startServer, type TestServer, stopChild } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { ApiClient } from '../helpers/api-client.js';
import { holderOf, serverHolding, serverId, startFailoverLoad } from '../helpers/failover-load.js';

const servers: TestServer[] = [];
const clients: ApiClient[] = [];
let hollow: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), `skiff-ha-leader-${process.pid}-`));

after(async () => {
  await stopChild(hollow);
  for (const c of clients) c.close();
  for (const s of servers.reverse()) await s.dispose().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** The ports of the `kubernetes` Endpoints' addresses (all servers are on 127.0.0.1). */
const endpointPorts = async (s: TestServer): Promise<number[]> => {
  const r = await s.request('GET', '/api/v1/namespaces/default/endpoints/kubernetes');
  if (r.status !== 200) return [];
  return ((r.json().subsets ?? []) as any[]).flatMap((sub) => (sub.addresses ?? []).map(() => sub.ports[0].port)).sort((a, b) => a - b);
};

test('kill -9 of the leading server: another takes over the loops, no write is lost, nodes stay Ready', async () => {
  const etcdFlags = async () => ['--etcd-client-port', String(await freePort()), '--etcd-peer-port', String(await freePort()), '--node-ip', '127.0.0.1'];
  // A short node grace period makes a wrongly judged takeover gap visible within the test.
  const common = ['--node-monitor-grace-period', '20'];
  const a = await startServer({ args: ['--cluster-init', ...await etcdFlags(), ...common] });
  servers.push(a);
  const token = readFileSync(join(a.dataDir, 'server', 'token'), 'utf8').trim();
  for (let i = 0; i < 2; i++) {
    servers.push(await startServer({ args: ['--server', a.url, '--token', token, ...await etcdFlags(), ...common] }));
  }
  const all = [...servers];

  // One leader for each Lease, holding it as `<hostname>_<server id>`.
  const leader = await eventually(() => serverHolding(a, 'kube-controller-manager', all), 'a controller-manager leader', 60_000);
  // The first server takes both Leases at once (nobody held them); the kill takes both loops' leader.
  await eventually(async () => (await serverHolding(a, 'kube-scheduler', all)) === leader, 'the scheduler lease on the same server', 60_000);
  const survivors = all.filter((s) => s !== leader);
  const [nodesVia, watchVia] = survivors as [TestServer, TestServer];
  const { transitions: before } = (await holderOf(a, 'kube-controller-manager'))!;
  // Every server in the kubernetes endpoints.
  await eventually(async () => JSON.stringify(await endpointPorts(nodesVia)) === JSON.stringify(all.map((s) => s.port).sort((x, y) => x - y)),
    'the three servers in the kubernetes endpoints', 60_000);

  // Hollow nodes joined through a surviving server.
  const hollowLog = join(dir, 'hollow.log');
  const fd = openSync(hollowLog, 'a');
  const nodeToken = readFileSync(join(nodesVia.dataDir, 'server', 'node-token'), 'utf8').trim();
  hollow = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['hollow', '--server', nodesVia.url, '--token', nodeToken, '--data-dir', join(dir, 'hollow'),
    '--count', '3', '--heartbeat-interval', '1', '--node-status-interval', '5', '--pod-start-delay', '100'],
  { cwd: REPO_ROOT, env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_'))), stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const readyNodes = async (s: TestServer) => {
    const r = await s.kubectl(['get', 'nodes', '--no-headers']);
    return r.stdout.trim().split('\n').filter((l) => /^hollow-\d+\s+Ready\s/.test(l)).length;
  };
  await eventually(async () => (await readyNodes(nodesVia)) === 3, '3 hollow nodes Ready', 90_000, () => readFileSync(hollowLog, 'utf8').slice(-2000));

  // A Deployment run by the first leader's loops.
  ok(await nodesVia.kubectl(['create', 'deployment', 'web', '--image=busybox', '--replicas=1']));
  const readyReplicas = async (s: TestServer) => Number((await s.kubectl(['get', 'deployment', 'web', '-o', 'jsonpath={.status.readyReplicas}'])).stdout || 0);
  await eventually(async () => (await readyReplicas(nodesVia)) === 1, 'web 1/1 before the kill', 90_000);

  // Writers through every server, a watch on a survivor, node readiness polled through another.
  const load = await startFailoverLoad(all, watchVia, nodesVia, clients);
  const killedAt = Date.now();
  await leader.kill9();
  // Scaled right after the kill: only the next leader's loops can converge it.
  ok(await nodesVia.kubectl(['scale', 'deployment', 'web', '--replicas=3']));

  // The two Leases are elected apart (as the two Kubernetes components): each goes to some survivor.
  const next = await eventually(async () => {
    const s = await serverHolding(nodesVia, 'kube-controller-manager', survivors);
    return s && (await serverHolding(nodesVia, 'kube-scheduler', survivors)) ? s : undefined;
  }, 'surviving servers to take both leases', 90_000);
  const tookOverMs = Date.now() - killedAt;
  assert.ok((await holderOf(nodesVia, 'kube-controller-manager'))!.transitions > before, 'leaseTransitions counted the takeover');
  await eventually(async () => (await readyReplicas(nodesVia)) === 3, 'web 3/3 through the new leader\'s loops', 120_000, () => next.logTail());
  const convergedMs = Date.now() - killedAt;
  const pods = JSON.parse(ok(await nodesVia.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json']))).items as any[];
  assert.equal(pods.filter((p) => p.spec.nodeName?.startsWith('hollow-') && p.status.phase === 'Running').length, 3);

  // Writes go on through the survivors after the kill.
  const afterKill = () => load.ackedAfter(killedAt);
  await eventually(async () => afterKill() >= 20, 'writes acknowledged after the kill', 60_000);

  // The dead server leaves the kubernetes endpoints.
  const left = survivors.map((s) => s.port).sort((x, y) => x - y);
  await eventually(async () => JSON.stringify(await endpointPorts(nodesVia)) === JSON.stringify(left), 'the dead server out of the kubernetes endpoints', 90_000);
  const droppedMs = Date.now() - killedAt;

  // Every acknowledged write is stored, and the watch on a survivor saw each; no node turned NotReady.
  await load.finish(async () => new Set((JSON.parse(ok(await watchVia.kubectl(['get', 'configmaps', '-o', 'json']))).items as any[]).map((c) => c.metadata.name)));
  const events = await nodesVia.kubectl(['get', 'events', '-A', '--field-selector', 'reason=NodeNotReady', '-o', 'name']);
  assert.equal(events.stdout.trim(), '', 'no NodeNotReady event');
  assert.equal(await readyNodes(nodesVia), 3);
  console.log(`failover: leases taken ${tookOverMs} ms after kill -9, deployment converged ${convergedMs} ms, endpoints updated ${droppedMs} ms; `
    + `${load.acked.size} writes acknowledged (${afterKill()} after the kill), none lost`);
});
