// High availability on PostgreSQL with a real agent (issue 13, the combined acceptance). Three servers
// share one PostgreSQL (Debian's, started by the test): A starts on an empty database and generates
// the cluster's CAs, keys and token; B and C are given only `--datastore-endpoint` and `--token` and
// take the same authorities from the bootstrap data A stored, encrypted with the token
// (src/server/datastore-bootstrap.ts). Then:
//   - A's kubeconfig works on B and C, a service-account token minted by C authenticates on A, and
//     a server with another token is refused with one error line, writing nothing to the datastore;
//   - one real agent (containerd, in its own network namespace as its own host) joins through the
//     leader of the control loops and runs a pod, hollow nodes join through a survivor;
//   - `kill -9` of the leader while clients write through every server: no acknowledged write is
//     lost, writes go on through the others, a watch on a survivor sees every change, another server
//     takes the Leases and its loops converge a Deployment scaled after the kill; the agent's load
//     balancer moves its API connections and tunnel to a survivor, its node stays Ready, its pod keeps
//     running (same container), `kubectl logs/exec` work through each survivor (the one without the
//     tunnel relays), a new pod scheduled to the node starts and is reached by `kubectl port-forward`
//     through the relay, and the agent restarted with the dead server's URL comes back through the
//     servers it stored.
// No duration is asserted; the failover times are printed. Needs root, containerd, iproute2 and
// Debian's postgresql; everything is removed after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { REPO_ROOT, freePort, startServer, type TestServer, stopChild } from '../helpers/cluster.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { ok, runKubectl } from '../helpers/kubectl.js';
import { ApiClient } from '../helpers/api-client.js';
import { holderOf, serverHolding, serverId, startFailoverLoad } from '../helpers/failover-load.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { serverListPath } from '../../src/agent/loadbalancer/server-list.js';
import { TUNNEL_LEASE_NAMESPACE, tunnelLeaseName } from '../../src/apiserver/tunnel/relay.js';

const run = process.pid % 250;
const host: NetnsHost = {
  name: `ha-agent-${process.pid}`, netns: `skha${process.pid % 100000}`, hostIf: `skhav${process.pid % 100000}`,
  hostIp: `10.192.${run}.1`, ip: `10.192.${run}.2`, dir: '',
};
const servers: TestServer[] = [];
const clients: ApiClient[] = [];
let db: PostgresServer | undefined;
let hollow: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), `skiff-ha-agent-${process.pid}-`));
const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, [host]);
const k = async (s: TestServer, args: string[]) => ok(await s.kubectl(args));
const json = async (s: TestServer, args: string[]) => JSON.parse(await k(s, [...args, '-o', 'json']));
const url = (s: TestServer) => `https://${host.hostIp}:${s.port}`;
/** The server holding the node's tunnel, as recorded for the others (its Lease in kube-system). */
const tunnelHolder = async (s: TestServer) => (await s.kubectl(['get', 'lease', '-n', TUNNEL_LEASE_NAMESPACE, tunnelLeaseName(host.name), '-o', 'json'])
  .then((r) => (r.code === 0 ? JSON.parse(r.stdout).spec?.holderIdentity : undefined)));
/** Rows of the datastore's log, for "nothing written" checks. */
const sql = async <T>(q: string, params: unknown[] = []): Promise<T[]> => {
  const c = new pg.Client({ connectionString: db!.url() });
  await c.connect();
  try { return (await c.query(q, params)).rows as T[]; } finally { await c.end(); }
};
// Each server on every address (the agent's host reaches them through its link), advertising the
// link address, which the `kubernetes` Endpoints then list.
const serverArgs = ['--bind-address', '0.0.0.0', '--advertise-address', host.hostIp, '--tls-san', host.hostIp, '--node-ip', '127.0.0.1'];
const agentArgs = ['--disable-network-policy', '--ingress-http-port', '0', '--ingress-https-port', '0'];
/** The loops a server started under the controller manager's Lease, from its log (controller-manager.ts). */
const electedLoops = (s: TestServer): string[] => readFileSync(s.logPath, 'utf8').split('\n').flatMap((line) => {
  try {
    const o = JSON.parse(line);
    return o.msg === 'control loops started' && o.group === 'kube-controller-manager' ? o.controllers as string[] : [];
  } catch { return []; }
});
const t0 = Date.now();
const phase = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

before(async () => {
  const missing = netnsAgentRequirements();
  if (missing.length) throw new Error(`the HA agent test needs: ${missing.join(', ')}`);
  db = await startPostgres();
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-ha-');
  servers.push(await startServer({ args: ['--datastore-endpoint', db.url(), ...serverArgs] }));
  phase('server A up');
});

after(async () => {
  host.proc?.kill('SIGKILL');
  await stopChild(hollow);
  if (host.dir) await teardownRuntime({ dataDir: host.dir, removeDataDir: true }).catch(() => undefined);
  removeHostNetwork(host);
  for (const c of clients) c.close();
  for (const s of [...servers].reverse()) await s.dispose().catch(() => {});
  await db?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('a second server with another token is refused with one error line and writes nothing', async () => {
  const a = servers[0]!;
  // Only A runs. Once its loops' first writes are done (3 s without a write but Lease renewals), it
  // renews its Leases only; anything else written while the refused server runs would be that server's.
  const settled = { max: -1, since: Date.now() };
  await eventually(async () => {
    const max = Number((await sql<{ max: string }>(`SELECT coalesce(max(id), 0) AS max FROM kv WHERE name NOT LIKE '/coordination.k8s.io/leases/%'`))[0]!.max);
    if (max !== settled.max) Object.assign(settled, { max, since: Date.now() });
    return Date.now() - settled.since >= 3000;
  }, 'A to settle', 60_000);
  const before = Number((await sql<{ max: string }>('SELECT max(id) AS max FROM kv'))[0]!.max);
  const bootstrapRows = async () => (await sql<{ name: string }>(`SELECT name FROM kv WHERE name LIKE '/skiff/bootstrap/%'`)).map((r) => r.name);
  const records = await bootstrapRows();
  assert.equal(records.length, 1, `one bootstrap record: ${records.join(', ')}`);
  const wrongDir = mkdtempSync(join(dir, 'wrong-'));
  const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), [
    'server', '--data-dir', wrongDir, '--https-listen-port', String(await freePort()), '--bind-address', '127.0.0.1', '--disable-agent',
    '--write-kubeconfig', join(wrongDir, 'kc.yaml'), '--datastore-endpoint', db!.url(), '--token', 'not-the-cluster-token',
  ], { encoding: 'utf8', timeout: 60_000, env: { ...Object.fromEntries(Object.entries(process.env).filter(([n]) => !n.startsWith('SKIFF_'))), SKIFF_LOG_LEVEL: 'error' } });
  assert.notEqual(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('skiff:'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /bootstrap data encrypted with a different token/);
  assert.doesNotMatch(r.stderr, /not-the-cluster-token/, 'the token is never printed');
  const written = await sql<{ name: string }>(`SELECT DISTINCT name FROM kv WHERE id > $1 AND name NOT LIKE '/coordination.k8s.io/leases/%'`, [before]);
  assert.deepEqual(written.map((w) => w.name), [], 'nothing but A\'s Lease renewals written while the refused server ran');
  assert.deepEqual(await bootstrapRows(), records);
  assert.equal(existsSync(join(wrongDir, 'server', 'tls')), false, 'no authorities made for the refused server');
  assert.equal(existsSync(join(wrongDir, 'server', 'id')), false);
  phase('another token refused');
});

test('servers given only the endpoint and the token share the CAs and keys: credentials from one work on the others', async () => {
  const a = servers[0]!;
  // The real agent joins through A (the first server, so the leader of the loops) while B and C come up.
  const nodeToken = readFileSync(join(a.dataDir, 'server', 'node-token'), 'utf8').trim();
  startNetnsAgent(host, a, nodeToken, agentArgs);
  // B and C: only the endpoint and the token (and their own addresses).
  const token = readFileSync(join(a.dataDir, 'server', 'token'), 'utf8').trim();
  servers.push(...await Promise.all([0, 1].map(() => startServer({ args: ['--datastore-endpoint', db!.url(), '--token', token, ...serverArgs] }))));
  phase('servers B and C up');
  const [, b, c] = servers as [TestServer, TestServer, TestServer];
  // Hollow nodes through B (they come up while the checks below run).
  const hollowLog = join(dir, 'hollow.log');
  const fd = openSync(hollowLog, 'a');
  hollow = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['hollow', '--server', b.url, '--token', nodeToken, '--data-dir', join(dir, 'hollow'),
    '--count', '3', '--heartbeat-interval', '1', '--node-status-interval', '5', '--pod-start-delay', '100'],
  { cwd: REPO_ROOT, env: Object.fromEntries(Object.entries(process.env).filter(([n]) => !n.startsWith('SKIFF_'))), stdio: ['ignore', fd, fd] });
  closeSync(fd);
  for (const f of ['server-ca.crt', 'server-ca.key', 'client-ca.crt', 'request-header-ca.crt', 'service.key']) {
    const want = readFileSync(join(a.dataDir, 'server', 'tls', f), 'utf8');
    for (const s of [b, c]) assert.equal(readFileSync(join(s.dataDir, 'server', 'tls', f), 'utf8'), want, `${f} of ${s.url}`);
  }
  assert.equal(readFileSync(join(b.dataDir, 'server', 'token'), 'utf8'), readFileSync(join(a.dataDir, 'server', 'token'), 'utf8'));
  // A's admin kubeconfig on B and C (their serving certificates come from the same CA).
  for (const s of [b, c]) {
    const r = await runKubectl(['--kubeconfig', a.kubeconfigPath, '--server', s.url, '--cache-dir', join(dir, `kc-${s.port}`)], ['get', 'namespace', 'kube-system', '-o', 'name']);
    assert.equal(ok(r).trim(), 'namespace/kube-system', `A's kubeconfig on ${s.url}`);
  }
  // A service-account token minted by C authenticates on A (the one signing key).
  const saToken = (await k(c, ['create', 'token', 'default', '-n', 'default'])).trim();
  const review = await a.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    { token: saToken, body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
  assert.equal(review.status, 201, review.body);
  assert.equal(review.json().status.userInfo.username, 'system:serviceaccount:default:default');

  phase('bootstrap shared');
});

test('kill -9 of the leader (the agent\'s server) while clients write: no write lost, loops move, the node stays Ready, logs/exec work through every survivor', { timeout: 420_000 }, async () => {
  const all = [...servers];
  const a = servers[0]!;
  const leader = await eventually(() => serverHolding(a, 'kube-controller-manager', all), 'a controller-manager leader', 60_000);
  await eventually(async () => (await serverHolding(a, 'kube-scheduler', all)) === leader, 'the scheduler lease on the same server', 60_000);
  const survivors = all.filter((s) => s !== leader);
  const [b, c] = survivors as [TestServer, TestServer];
  const { transitions: transitionsBefore } = (await holderOf(a, 'kube-controller-manager'))!;

  // The agent joined through A: the kill takes the leader and the agent's server at once.
  assert.equal(leader, a, 'the first server leads the loops');
  // The Event sweeper and the fleet manager's loops run with the other loops, on the leader only.
  assert.ok(['event-ttl', 'fleet-manager', 'replicaset-controller'].every((l) => electedLoops(a).includes(l)), `A's elected loops: ${electedLoops(a).join(',')}`);
  for (const s of survivors) assert.deepEqual(electedLoops(s), [], `no elected loop on the standby ${s.url}`);
  const nodeToken = readFileSync(join(a.dataDir, 'server', 'node-token'), 'utf8').trim();
  const ready = async (s: TestServer, node: string) => (await json(s, ['get', 'node', node])).status.conditions.find((x: any) => x.type === 'Ready')?.status === 'True';
  const readyHollow = async (s: TestServer) => (await s.kubectl(['get', 'nodes', '--no-headers'])).stdout.trim().split('\n').filter((l) => /^hollow-\d+\s+Ready\s/.test(l)).length;
  await eventually(async () => (await readyHollow(b)) === 3, '3 hollow nodes Ready');
  await eventually(() => ready(leader, host.name), 'the agent\'s node Ready');
  phase('agent and hollow nodes Ready');
  // The agent's pod, pinned to its node; a Deployment on the hollow nodes.
  await k(leader, ['run', 'one', '--image', TEST_IMAGE, '--restart', 'Never', '--overrides', JSON.stringify({ spec: { nodeName: host.name } }),
    '--', 'sh', '-c', 'echo started one; exec sleep 3600']);
  // On the hollow nodes only: the real node has no busybox image to pull.
  ok(await b.kubectl(['apply', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: {
      containers: [{ name: 'web', image: 'busybox' }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
        { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'NotIn', values: [host.name] }] }] } } },
    } } },
  }) }));
  // The agent learns every server from the `kubernetes` Endpoints and keeps the list.
  await eventually(async () => {
    const stored = JSON.parse(readFileSync(serverListPath(host.dir), 'utf8'));
    return all.every((s) => stored.serverAddresses.includes(`${host.hostIp}:${s.port}`));
  }, 'the agent\'s stored server list naming all three servers');
  await eventually(async () => (await json(b, ['get', 'pod', 'one'])).status.phase === 'Running', 'pod one Running');
  const containerId = (await json(b, ['get', 'pod', 'one'])).status.containerStatuses[0].containerID;
  await eventually(async () => (await tunnelHolder(b)) === url(leader), 'the tunnel recorded as the leader\'s');
  const readyReplicas = async (s: TestServer) => Number((await s.kubectl(['get', 'deployment', 'web', '-o', 'jsonpath={.status.readyReplicas}'])).stdout || 0);
  await eventually(async () => (await readyReplicas(b)) === 1, 'web 1/1 before the kill');
  phase('pod one running, web 1/1');

  // Writers through every server, a watch on survivor C, node readiness polled through B.
  const load = await startFailoverLoad(all, c, b, clients);

  const lease = async (s: TestServer) => Date.parse((await json(s, ['get', 'lease', '-n', 'kube-node-lease', host.name])).spec.renewTime);
  const killedAt = Date.now();
  await leader.kill9();
  const goneAt = Date.now();
  // Scaled right after the kill: only the next leader's loops can converge it.
  await k(b, ['scale', 'deployment', 'web', '--replicas=3']);

  // Only a renewal stamped after the kill proves the agent reached another server.
  const renewed = await eventually(async () => ((await lease(b)) > goneAt ? Date.now() : false), 'the node\'s Lease renewed after the kill');
  const holder = await eventually(async () => {
    const h = await tunnelHolder(b);
    return h && h !== url(leader) ? h : undefined;
  }, 'the tunnel on a surviving server');
  const tunnelAt = Date.now();
  assert.ok([url(b), url(c)].includes(holder));
  const next = await eventually(async () => {
    const s = await serverHolding(b, 'kube-controller-manager', survivors);
    return s && (await serverHolding(b, 'kube-scheduler', survivors)) ? s : undefined;
  }, 'surviving servers to take both leases');
  const tookOverMs = Date.now() - killedAt;
  assert.ok((await holderOf(b, 'kube-controller-manager'))!.transitions > transitionsBefore, 'leaseTransitions counted the takeover');
  await eventually(async () => (await readyReplicas(b)) === 3, 'web 3/3 through the new leader\'s loops', 120_000);
  assert.ok(['event-ttl', 'fleet-manager'].every((l) => electedLoops(next).includes(l)), `the new leader's loops: ${electedLoops(next).join(',')}`);
  assert.deepEqual(electedLoops(survivors.find((s) => s !== next)!), [], 'none on the remaining standby');
  const convergedMs = Date.now() - killedAt;
  console.log(`# failover after kill -9: the agent's Lease renewed via another server ${renewed - killedAt} ms, its tunnel on ${holder} `
    + `${tunnelAt - killedAt} ms, the loops' Leases taken ${tookOverMs} ms (by ${next.url}), web converged ${convergedMs} ms`);
  phase('failed over');

  for (const s of [b, c]) {
    assert.ok(await ready(s, host.name), `node Ready as ${s.url} sees it`);
    const pod = await json(s, ['get', 'pod', 'one']);
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.status.containerStatuses[0].containerID, containerId, 'the same container keeps running');
    // One of B and C holds the tunnel, the other relays: both answer, exit codes included.
    await eventually(async () => /started one/.test(await k(s, ['logs', 'one'])), `logs through ${s.url}`);
    await eventually(async () => (await k(s, ['exec', 'one', '--', 'echo', `via ${s.port}`])).trim() === `via ${s.port}`, `exec through ${s.url}`);
    const r = await s.kubectl(['exec', 'one', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7, `exit code through ${s.url}: ${r.stderr}`);
    assert.equal(r.stdout, 'out\n');
  }
  // A new pod for the node starts after the failover, bound by the new leader's scheduler, and is
  // reached by `kubectl port-forward` through the survivor that does not hold the tunnel (it relays).
  await k(b, ['run', 'two', '--image', TEST_IMAGE, '--restart', 'Never', '--overrides',
    JSON.stringify({ spec: { nodeSelector: { 'kubernetes.io/hostname': host.name } } }), '--', 'sh', '-c',
    'echo started two; echo page-of-two > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']);
  await eventually(async () => (await json(c, ['get', 'pod', 'two'])).status.phase === 'Running', 'pod two Running on the node');
  await eventually(async () => /started two/.test(await k(c, ['logs', 'two'])), 'logs of pod two');
  const relaying = [b, c].find((s) => url(s) !== holder)!;
  const pf = relaying.kubectlStream(['port-forward', 'pod/two', ':8080']);
  try {
    const port = (await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 30_000))[1];
    await eventually(async () => spawnSync('curl', ['-s', '-m', '5', `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8' }).stdout === 'page-of-two\n',
      `port-forward through ${relaying.url}`);
  } finally { await pf.stop(); }
  phase('pod two running, port-forward relayed');

  // Writes go on through the survivors.
  const afterKill = () => load.ackedAfter(killedAt);
  await eventually(async () => afterKill() >= 20, 'writes acknowledged after the kill', 60_000);
  // Every acknowledged write is stored, and the watch on a survivor saw each.
  await load.finish(async () => new Set((JSON.parse(await k(c, ['get', 'configmaps', '-o', 'json'])).items as any[]).map((x) => x.metadata.name)));
  console.log(`# ${load.acked.size} writes acknowledged (${afterKill()} after the kill), none lost`);

  // The agent restarted while the server it was started with is still dead: the list it stored
  // takes it to the others; its Lease is renewed again and it adopts its running pods.
  const twoId = (await json(c, ['get', 'pod', 'two'])).status.containerStatuses[0].containerID;
  host.proc!.kill('SIGKILL');
  await new Promise((r) => host.proc!.once('exit', r));
  const restartedAt = Date.now();
  startNetnsAgent(host, leader, nodeToken, agentArgs);
  await eventually(async () => (await lease(c)) > restartedAt, 'the Lease renewed by the restarted agent');
  assert.ok(await ready(c, host.name));
  for (const name of ['one', 'two']) {
    const p = await json(b, ['get', 'pod', name]);
    assert.equal(p.status.phase, 'Running');
    assert.equal(p.status.containerStatuses[0].containerID, name === 'one' ? containerId : twoId, `pod ${name} adopted, not restarted`);
  }
  await eventually(async () => (await k(c, ['exec', 'two', '--', 'echo', 'after restart'])).trim() === 'after restart', 'exec after the agent restart');
  phase('agent restarted with its server dead: back through the others');
  phase('done');
});
