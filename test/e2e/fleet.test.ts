// Fleet end to end (issue 17 items 1, 4, 5): a manager and five sites, all real `skiff server`
// processes on loopback with their own ports and data dirs. The sites register over their one
// outbound tunnel with labels and show Ready in `kubectl get clusters`; site-1 reports the nodes of a
// `skiff hollow`; site-3 runs a real `skiff agent` with containerd, and the test reaches it only
// through the manager (`skiff fleet kubeconfig site-3`: the site's port is nowhere in it) to list,
// create, read logs of and exec into a pod; a user without RBAC on the Cluster gets 403, and one
// granted reach still runs as herself under the site's RBAC; a duplicate name with another identity
// and a wrong token are refused with clear messages while the others stay Ready; a stopped site turns
// Offline and Ready again when it returns. Everything is torn down, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';
import { KubectlStream, ok, runKubectl, type KubectlResult } from '../helpers/kubectl.js';
import { get as httpGet } from 'node:http';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { SiteConnection } from '../../src/fleet/site-connection.js';
import { fleetToken, readyOf, siteFlags, skiff, spawnLogged, tail } from '../helpers/fleet.js';

const RUN = `fl${process.pid}`;
const BRIDGE = `skf${process.pid % 100000}`;
const REGION: Record<string, string> = { 'site-1': 'eu', 'site-2': 'eu', 'site-3': 'eu', 'site-4': 'us', 'site-5': 'us' };

let manager: TestServer;
const sites = new Map<string, TestServer>();
let token = '';
const work = mkdtempSync(`/tmp/skiff-${RUN}-`);
const agentDir = join(work, 'agent');
let agent: ChildProcess | undefined;
let hollow: ChildProcess | undefined;
const connections: SiteConnection[] = [];

function needs(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (the real agent on site-3)');
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/bin/busybox', '/usr/bin/kubectl']) if (!existsSync(bin)) missing.push(bin);
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) missing.push('a build (npm run build)');
  return missing;
}

const mk = (args: string[]) => manager.kubectl(args);
const fleetKubeconfig = join(work, 'site-3.kubeconfig');
const auditLog = join(work, 'manager-audit.log');
const viaManager = (args: string[], timeoutMs = 60_000): Promise<KubectlResult> =>
  runKubectl(['--kubeconfig', fleetKubeconfig, '--cache-dir', join(work, 'kubectl-cache')], args, { timeoutMs });

async function clusterJson(name: string): Promise<any> {
  const r = await mk(['get', 'cluster', name, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}
function httpGetText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet(url, { timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

const siteArgs = (name: string): string[] => siteFlags(manager, token, name, { region: REGION[name]!, site: name });

before(async () => {
  const missing = needs();
  if (missing.length) throw new Error(`the fleet end-to-end test needs: ${missing.join(', ')}`);
  // A short grace keeps the Offline step quick; the default (40 s) is the same code path.
  writeFileSync(join(work, 'audit-policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources: [{group: fleet.skiff.io}]\n');
  manager = await startServer({ args: ['--fleet-offline-grace', '8', '--audit-log-path', auditLog, '--audit-policy-file', join(work, 'audit-policy.yaml')] });
  token = fleetToken(manager);
  // At once (their start-ups overlap: the slowest part of this file), and light: only site-3 (the
  // one running pods) runs the control loops; the others are API servers with their fleet site,
  // which is all registration and heartbeats need.
  await Promise.all(Object.keys(REGION).map(async (name) => {
    sites.set(name, await startServer({ args: [...siteArgs(name), ...(name === 'site-3' ? [] : ['--disable-controller-manager'])] }));
  }));
});

after(async () => {
  for (const c of connections) c.stop();
  hollow?.kill('SIGKILL');
  agent?.kill('SIGKILL');
  if (existsSync(agentDir)) await teardownRuntime({ dataDir: agentDir, removeDataDir: true }).catch(() => undefined);
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
});

test('five sites register with their labels and show Ready in kubectl get clusters', async () => {
  const rows = await eventually(async () => {
    const r = await mk(['get', 'clusters', '--no-headers']);
    const lines = r.stdout.trim().split('\n').filter((l) => / True /.test(l));
    return lines.length === 5 ? r.stdout : undefined;
  }, 'five Ready clusters', 120_000, () => manager.logTail());
  for (const name of Object.keys(REGION)) assert.match(rows, new RegExp(`^${name}\\s+True\\s+\\d+/\\d+\\s+v1\\.32`, 'm'));
  const header = ok(await mk(['get', 'clusters'])).split('\n')[0]!;
  assert.match(header, /^NAME\s+READY\s+NODES\s+VERSION\s+LAST-SEEN\s+BUNDLES-READY\s+AGE$/);
  const eu = ok(await mk(['get', 'clusters', '-l', 'region=eu', '-o', 'name'])).trim().split('\n').sort();
  assert.deepEqual(eu, ['cluster.fleet.skiff.io/site-1', 'cluster.fleet.skiff.io/site-2', 'cluster.fleet.skiff.io/site-3']);
  // The site's identity on the manager binds its name to its certificate; it reports version and capacity.
  const c = await clusterJson('site-2');
  assert.match(c.status.identity.certificateFingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(c.status.version, 'v1.32.4+skiff');
  assert.ok(existsSync(join(sites.get('site-2')!.dataDir, 'fleet', 'identity.json')), 'the site keeps its identity in its data dir');
});

test('node counts: site-1 reports the nodes of a skiff hollow', async () => {
  const site = sites.get('site-1')!;
  const nodeToken = readFileSync(join(site.dataDir, 'server', 'node-token'), 'utf8').trim();
  hollow = spawnLogged(['hollow', '--server', site.url, '--token', nodeToken, '--count', '3', '--data-dir', join(work, 'hollow'),
    '--name-prefix', `${RUN}-h-`], join(work, 'hollow.log'));
  const c = await eventually(async () => { const x = await clusterJson('site-1'); return x?.status?.display?.nodes === '3/3' ? x : undefined; },
    'site-1 reporting 3/3 nodes', 90_000, () => tail(join(work, 'hollow.log')));
  assert.equal(c.status.nodes.total, 3);
  assert.notEqual(c.status.capacity.cpu, '0');
});

test('a ClusterGroup selects clusters by label and counts the Ready ones', async () => {
  ok(await manager.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'ClusterGroup', metadata: { name: 'eu' }, spec: { selector: { matchLabels: { region: 'eu' } } } }),
  }));
  await eventually(async () => (await mk(['get', 'clustergroup', 'eu', '--no-headers'])).stdout.includes('3/3'), 'ClusterGroup eu 3/3', 60_000);
});

test('kubectl reaches site-3 through the manager only: get, run, logs, exec', async () => {
  const site = sites.get('site-3')!;
  // A real agent joins site-3 (the site's own node), as on a real edge box.
  mkdirSync(join(agentDir, 'agent', 'images'), { recursive: true });
  writeBusyboxImage(join(agentDir, 'agent', 'images'), 'busybox.tar');
  const nodeToken = readFileSync(join(site.dataDir, 'server', 'node-token'), 'utf8').trim();
  agent = spawnLogged(['agent', '--server', site.url, '--token', nodeToken, '--data-dir', agentDir, '--node-name', `${RUN}-node`,
    '--node-ip', '127.0.0.1', '--bridge-name', BRIDGE], join(work, 'agent.log'));

  writeFileSync(fleetKubeconfig, skiff(['fleet', 'kubeconfig', 'site-3', '--kubeconfig', manager.kubeconfigPath]));
  const text = readFileSync(fleetKubeconfig, 'utf8');
  assert.match(text, new RegExp(`server: https://127\\.0\\.0\\.1:${manager.port}/apis/fleet\\.skiff\\.io/v1alpha1/clusters/site-3/proxy`));
  assert.ok(!text.includes(`:${site.port}`), 'the site\'s API port is not in the fleet kubeconfig');

  await eventually(async () => / Ready /.test((await viaManager(['get', 'nodes', '--no-headers'])).stdout), 'site-3\'s node Ready (via the manager)', 120_000,
    () => tail(join(work, 'agent.log')));
  await eventually(async () => (await clusterJson('site-3'))?.status?.display?.nodes === '1/1', 'site-3 reporting 1/1 nodes', 60_000);
  ok(await viaManager(['run', 'hello', '--image', TEST_IMAGE, '--restart=Never', '--', 'sh', '-c',
    'echo hello-from-site-3; mkdir -p /www; echo page-from-site-3 > /www/index.html; exec httpd -f -p 8080 -h /www']));
  await eventually(async () => (await viaManager(['get', 'pod', 'hello', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', 'pod Running', 120_000,
    () => tail(join(work, 'agent.log')));
  const pods = ok(await viaManager(['get', 'pods', '-A']));
  assert.match(pods, /default\s+hello\s+1\/1\s+Running/);
  await eventually(async () => (await viaManager(['logs', 'hello'])).stdout.includes('hello-from-site-3'), 'logs through the manager', 30_000);
  const exec = ok(await viaManager(['exec', 'hello', '--', 'sh', '-c', 'echo exec-$((6*7)); hostname']));
  assert.match(exec, /^exec-42\nhello\n$/);
  // stdin over the upgraded stream too.
  const withStdin = await runKubectl(['--kubeconfig', fleetKubeconfig, '--cache-dir', join(work, 'kubectl-cache')],
    ['exec', '-i', 'hello', '--', 'sh', '-c', 'tr a-z A-Z'], { input: 'through the tunnel\n' });
  assert.equal(ok(withStdin), 'THROUGH THE TUNNEL\n');
  // port-forward: kubectl's tunnelled streams through the manager and the site's tunnel to the pod.
  const pf = new KubectlStream(['--kubeconfig', fleetKubeconfig, '--cache-dir', join(work, 'kubectl-cache')], ['port-forward', 'pod/hello', ':8080']);
  try {
    const m = await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+)/, 60_000);
    const page = await eventually(() => httpGetText(`http://127.0.0.1:${m[1]}/`).catch(() => undefined), 'a page through port-forward', 30_000);
    assert.equal(page, 'page-from-site-3\n');
  } finally {
    await pf.stop();
  }
  // The manager audited the reach: who, which cluster, what path on it.
  const audited = () => (existsSync(auditLog) ? readFileSync(auditLog, 'utf8').trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [])
    .filter((e: any) => e.objectRef?.resource === 'clusters' && e.objectRef?.subresource === 'proxy' && e.objectRef?.name === 'site-3');
  await eventually(async () => audited().some((e: any) => /\/proxy\/api\/v1\/namespaces\/default\/pods\/hello\/exec\?/.test(e.requestURI)),
    'exec through the manager in the manager\'s audit log', 30_000);
  assert.ok(audited().some((e: any) => e.verb === 'get' && e.requestURI.includes('/proxy/api/v1/pods') && e.user.username === 'system:admin'), 'get pods -A is audited with the caller');
  // The request ran on site-3 (not the manager): the manager has no such pod.
  assert.equal((await mk(['get', 'pod', 'hello'])).code, 1);
});

test('RBAC on the Cluster: no clusters/proxy → 403 on the manager; granted reach runs as the user under the site\'s RBAC', async () => {
  const denied = await viaManager(['--as', 'alice', 'get', 'pods']);
  assert.equal(denied.code, 1);
  // (Kubernetes names the object by its group-resource without the subresource; the verb line names it)
  assert.match(denied.stderr, /clusters\.fleet\.skiff\.io "site-3" is forbidden: User "alice" cannot get resource "clusters\/proxy"/);
  ok(await manager.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1', kind: 'List', items: [
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'reach-site-3' },
          rules: [{ apiGroups: ['fleet.skiff.io'], resources: ['clusters/proxy'], resourceNames: ['site-3'], verbs: ['get', 'create', 'update', 'patch', 'delete'] }] },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'alice-reach-site-3' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'reach-site-3' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }] },
      ],
    }),
  }));
  // Reach granted, but on site-3 alice is only alice: its RBAC gives her nothing.
  const onSite = await eventually(async () => { const r = await viaManager(['--as', 'alice', 'get', 'pods']); return /cannot list resource "pods"/.test(r.stderr) ? r : undefined; },
    'the site refusing alice', 30_000);
  assert.match(onSite.stderr, /pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"/);
  // Another cluster is still out of her reach.
  const other = await mk(['--as', 'alice', 'get', '--raw', '/apis/fleet.skiff.io/v1alpha1/clusters/site-2/proxy/api']);
  assert.match(other.stderr, /clusters\.fleet\.skiff\.io "site-2" is forbidden/);
});

test('a duplicate name with another identity and a wrong token are refused; the others stay Ready', async () => {
  const refusal = (c: SiteConnection) => new Promise<string>((resolve) => c.once('refused', resolve));
  const dup = new SiteConnection({
    managerUrl: manager.url, token, name: 'site-2', labels: { region: 'eu' }, heartbeatMs: 2000,
    store: { load: () => undefined, save: () => undefined },
    report: () => ({ version: 'x', labels: {}, nodes: { ready: 0, total: 0 }, capacity: { cpu: '0', memory: '0', pods: '0' } }),
    serveApi: (s) => s.reject({ code: 503, message: 'none' }),
  });
  const bad = new SiteConnection({
    managerUrl: manager.url, token: token.replace(/.$/, (ch) => (ch === '0' ? '1' : '0')), name: 'site-wrong', labels: {}, heartbeatMs: 2000,
    store: { load: () => undefined, save: () => undefined },
    report: () => ({ version: 'x', labels: {}, nodes: { ready: 0, total: 0 }, capacity: { cpu: '0', memory: '0', pods: '0' } }),
    serveApi: (s) => s.reject({ code: 503, message: 'none' }),
  });
  connections.push(dup, bad);
  const [dupMsg, badMsg] = await Promise.all([refusal(dup), refusal(bad), dup.start(), bad.start()]);
  assert.match(dupMsg, /refused the registration \(409\): cluster name "site-2" is already registered by another site \(another identity\)/);
  assert.match(badMsg, /refused the registration \(401\): invalid fleet registration token/);
  dup.stop();
  bad.stop();
  const c = await clusterJson('site-2');
  const conflict = c.status.conditions.find((x: any) => x.type === 'RegistrationConflict');
  assert.equal(conflict?.status, 'True');
  assert.match(conflict.message, /another identity tried to register as "site-2"/);
  assert.equal(readyOf(c), 'True', 'the registered site-2 is unaffected');
  assert.equal(await clusterJson('site-wrong'), undefined, 'no Cluster for a wrong token');
  const events = ok(await mk(['get', 'events', '--field-selector', 'reason=RegistrationConflict', '-o', 'name']));
  assert.ok(events.trim().length > 0, 'a Warning event on the Cluster');
  const all = ok(await mk(['get', 'clusters', '--no-headers']));
  assert.equal(all.trim().split('\n').filter((l) => / True /.test(l)).length, 5);
});

test('a stopped site turns Offline, and Ready again when it returns', async () => {
  const site = sites.get('site-4')!;
  await site.stop();
  const off = await eventually(async () => { const c = await clusterJson('site-4'); return readyOf(c) === 'False' ? c : undefined; }, 'site-4 Offline', 90_000);
  assert.equal(off.status.conditions.find((x: any) => x.type === 'Offline')?.status, 'True');
  assert.equal(off.status.display.state, 'Offline');
  const table = skiff(['fleet', 'status', '--kubeconfig', manager.kubeconfigPath]);
  assert.match(table, /^site-4\s+False\s+Offline\s/m);
  assert.match(table, /^site-5\s+True\s+Ready\s/m);
  assert.match(table, /5 clusters: 4 ready, 1 offline/);
  // Reaching an offline site answers 503 with the reason, at once.
  const r = await mk(['get', '--raw', '/apis/fleet.skiff.io/v1alpha1/clusters/site-4/proxy/api']);
  assert.match(r.stderr, /cluster "site-4" is not connected to this manager/);
  await site.launch();
  await eventually(async () => readyOf(await clusterJson('site-4')) === 'True', 'site-4 Ready again', 90_000, () => site.logTail());
});
