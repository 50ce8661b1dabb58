// A staged fleet rollout on real sites (issue 17's acceptance): a manager and three real `skiff
// server` sites on loopback, each registered over its one outbound tunnel. site-a runs ONE real
// `skiff agent` (its own containerd, runc and bridge CNI); site-b and site-c each run one hollow node
// (in this process: the real join, Lease and pod status path, pods reported Running). A Bundle holds
// a Deployment and a rolloutStrategy of three partitions, one site each, site-a first.
//
// - v1 (the local busybox image) is Ready on all three; on site-a its pod really runs in containerd.
// - v2 names an image that cannot be pulled (a registry on 127.0.0.1:1: refused at once, whatever
//   the sandbox would answer for a real registry name). site-a's real pod goes ErrImagePull /
//   ImagePullBackOff, so partition 1 fails its health gate from the real pod status: the Bundle
//   shows RolloutPaused naming site-a and the pod's reason; site-b and site-c keep v1 (their
//   Deployments, read with kubectl on each site); site-a keeps serving from its old pod (surge).
// - site-c's server stops (Offline on the manager). The bundle is fixed (v3, the working image):
//   site-a and site-b get v3, the rollout completes without waiting for site-c (offlineClusters:
//   Skip, the default: its BundleDeployment is released), and site-c takes v3 when it restarts.
//
// It needs root, containerd, runc and the CNI plugins (the real agent). Everything it starts is
// stopped, also on failure: the agent and its containers, mounts, cgroups and bridge (local-agent.ts),
// the hollow nodes, the servers (cluster.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { API_ONLY, startServer, type TestServer } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { localAgentRequirements, startLocalAgent, type LocalAgent } from '../helpers/local-agent.js';
import { fleetToken, getJson, readyOf, siteFlags } from '../helpers/fleet.js';
import { runHollow } from '../../src/hollow/run.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import type { HollowFleet } from '../../src/hollow/fleet.js';
import { setLogLevel } from '../../src/util/log.js';

const RUN = `fr${process.pid}`;
const NS = 'rollout';
/** Unpullable on purpose: nothing listens on port 1, so the pull fails at once with ErrImagePull. */
const BROKEN = '127.0.0.1:1/skiff/web:broken';
const work = mkdtempSync(`/tmp/skiff-${RUN}-`);
let manager: TestServer;
let agent: LocalAgent | undefined;
const sites = new Map<string, TestServer>();
const hollow: HollowFleet[] = [];

const diag = () => `${spawnSync('kubectl', ['--kubeconfig', manager.kubeconfigPath, 'get', 'bundles,bundledeployments,clusters', '-A', '-o', 'yaml'], { encoding: 'utf8' }).stdout}\n${manager.logTail()}`
  + (agent ? `\n--- site-a\n${agent.server.logTail(20)}\n--- agent\n${agent.logTail(20)}` : '');
const bundle = () => getJson(manager, ['bundle', 'web']);
const condition = (b: any, type: string) => b?.status?.conditions?.find((c: any) => c.type === type);
/** What a site's Deployment says it runs: [image, version annotation]. */
async function runs(site: string): Promise<[string, string] | undefined> {
  const d = await getJson(sites.get(site)!, ['deployment', 'web', '-n', NS]);
  const t = d?.spec?.template;
  return t ? [t.spec.containers[0].image, t.metadata.annotations?.['fleet-test/version']] : undefined;
}
const pods = async (site: string) => (await getJson(sites.get(site)!, ['pods', '-n', NS, '-l', 'app=web']))?.items ?? [];
/** The containers containerd runs on site-a's node, as `containerd://<id>`, asked over its CRI socket. */
async function inContainerd(): Promise<string[]> {
  const cri = new CriClient(join(agent!.dataDir, 'agent', 'containerd', 'containerd.sock'));
  try {
    return (await cri.listContainers()).filter((c: any) => c.state === 'CONTAINER_RUNNING').map((c: any) => `containerd://${c.id}`);
  } finally { cri.close(); }
}
/** site-a's running web pod of `version`, once containerd runs its container too. */
async function realPod(version: string): Promise<any> {
  const p = (await pods('site-a')).find((x: any) => running(x) && x.metadata.annotations?.['fleet-test/version'] === version);
  return p && (await inContainerd()).includes(p.status.containerStatuses[0].containerID) ? p : undefined;
}
const running = (p: any) => p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.state?.running && !p.metadata.deletionTimestamp;

function web(version: string, image: string) {
  const manifest = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' }, annotations: { 'fleet-test/version': version } },
        // sleep ignores SIGTERM as PID 1: a short grace keeps the old replica's exit quick.
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'web', image, command: ['sleep', '3600'] }] },
      },
    },
  };
  return {
    apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'Bundle', metadata: { name: 'web', namespace: 'default' },
    spec: {
      defaultNamespace: NS,
      resources: [{ name: 'web.yaml', content: JSON.stringify(manifest) }],
      targets: [{ clusterSelector: { matchLabels: { rollout: RUN } } }],
      rolloutStrategy: { partitions: ['a', 'b', 'c'].map((x, i) => ({ name: `p${i + 1}-site-${x}`, clusterName: `site-${x}` })) },
    },
  };
}
const apply = async (obj: unknown) => ok(await manager.kubectl(['apply', '-f', '-'], { input: JSON.stringify(obj) }));

/** One hollow node joined to `site` (in this process). */
async function hollowNode(site: TestServer, name: string): Promise<HollowFleet> {
  return runHollow({
    server: site.url, token: readFileSync(join(site.dataDir, 'server', 'node-token'), 'utf8').trim(), count: 1,
    namePrefix: `${RUN}-${name}-`, labels: {}, taints: [], dataDir: join(work, name), joinConcurrency: 1,
    podStartDelayMs: 200, terminationDelayMs: 200, heartbeatIntervalMs: 10_000, nodeStatusIntervalMs: 60_000,
  });
}

before(async () => {
  const missing = localAgentRequirements();
  if (missing.length) throw new Error(`the fleet rollout end-to-end test needs (for site-a's real agent): ${missing.join(', ')}`);
  setLogLevel('error');   // the hollow nodes log in this process (site-c's downtime is expected)
  // A short offline grace keeps the offline step quick; the default (40 s) is the same code path.
  manager = await startServer({ args: [...API_ONLY, '--fleet-offline-grace', '6'] });
  const token = fleetToken(manager);
  const flags = (name: string) => siteFlags(manager, token, name, { rollout: RUN });
  // The sites start at once: the slowest part of this file.
  await Promise.all([
    (async () => {
      agent = await startLocalAgent({ tag: 'flra', serverArgs: flags('site-a') });
      sites.set('site-a', agent.server);
    })(),
    ...['site-b', 'site-c'].map(async (name) => {
      const s = await startServer({ args: flags(name) });
      sites.set(name, s);
      hollow.push(await hollowNode(s, name));
    }),
  ]);
});

after(async () => {
  await Promise.all(hollow.map((h) => h.stop()));
  await agent?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('v1 is Ready on the three sites; on site-a its pod runs in containerd', async () => {
  await eventually(async () => {
    const list = await getJson(manager, ['clusters', '-l', `rollout=${RUN}`]);
    return list?.items.filter((c: any) => readyOf(c) === 'True').length === 3;
  }, 'three Ready sites', 120_000, diag);
  await apply(web('v1', TEST_IMAGE));
  await eventually(async () => (await bundle())?.status?.display?.readyClusters === '3/3', 'v1 Ready on all three', 120_000, diag);
  for (const site of ['site-a', 'site-b', 'site-c']) assert.deepEqual(await runs(site), [TEST_IMAGE, 'v1'], site);
  const pod = await eventually(() => realPod('v1'), 'site-a: the v1 pod running in containerd', 30_000, diag);
  assert.equal(pod.spec.nodeName, agent!.nodeName);
  assert.match(pod.status.containerStatuses[0].containerID, /^containerd:\/\/[0-9a-f]{64}$/);
});

test('v2 with a broken image: site-a fails the health gate from its real pod status, the rollout pauses, site-b and site-c keep v1', async () => {
  await apply(web('v2', BROKEN));
  const b = await eventually(async () => {
    const x = await bundle();
    return condition(x, 'RolloutPaused')?.status === 'True' && /ErrImagePull|ImagePullBackOff/.test(condition(x, 'RolloutPaused').message) ? x : undefined;
  }, 'the rollout paused at site-a with the pull failure', 120_000, diag);
  const paused = condition(b, 'RolloutPaused');
  assert.equal(paused.reason, 'PartitionNotReady');
  assert.match(paused.message, new RegExp(`^partition "p1-site-a" is not Ready on site-a \\(deployment ${NS}/web: .*pod web-[a-z0-9-]+: (ErrImagePull|ImagePullBackOff): ${BROKEN.replace(/[.:/]/g, '\\$&')}.*\\); the next partitions wait \\(2 clusters\\)$`));
  assert.equal(b.status.display.state, 'RolloutPaused');
  // None runs v2 Ready: site-a fails it, the others wait for it.
  assert.match(ok(await manager.kubectl(['get', 'bundle', 'web'])), /^web\s+0\/3\s+RolloutPaused\s/m);
  assert.deepEqual(b.status.partitions.map((p: any) => [p.name, p.count]), [['p1-site-a', 1], ['p2-site-b', 1], ['p3-site-c', 1]]);
  // The real pod status on site-a: the new replica cannot pull, the old one still runs (surge).
  const ps = await pods('site-a');
  const reason = ps.map((p: any) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason).find(Boolean);
  assert.match(String(reason), /^(ErrImagePull|ImagePullBackOff)$/);
  assert.ok(await realPod('v1'), 'site-a keeps its v1 pod running in containerd');
  assert.deepEqual(await runs('site-a'), [BROKEN, 'v2']);
  // The other partitions were never released.
  for (const site of ['site-b', 'site-c']) {
    assert.deepEqual(await runs(site), [TEST_IMAGE, 'v1'], `${site} keeps v1`);
    const bd = await getJson(manager, ['bundledeployment', `web.${site}`]);
    assert.notEqual(bd.spec.deploymentID, bd.spec.stagedDeploymentID, `${site} is held back`);
  }
});

test('site-c offline; the fixed bundle (v3) completes on site-a and site-b without waiting; site-c takes v3 on return', async () => {
  const siteC = sites.get('site-c')!;
  await siteC.stop();
  await eventually(async () => readyOf(await getJson(manager, ['cluster', 'site-c'])) === 'False', 'site-c Offline', 60_000, diag);
  await apply(web('v3', TEST_IMAGE));
  const done = await eventually(async () => {
    const x = await bundle();
    return x?.status?.summary?.ready === 2 && condition(x, 'RolloutPaused')?.status === 'False' ? x : undefined;
  }, 'v3 Ready on site-a and site-b, the rollout not held by site-c', 120_000, diag);
  assert.equal(condition(done, 'RolloutPaused').reason, 'AllPartitionsReady');
  assert.equal(done.status.summary.offline, 1);
  assert.deepEqual(done.status.summary.nonReadyClusters, ['site-c']);
  for (const site of ['site-a', 'site-b']) assert.deepEqual(await runs(site), [TEST_IMAGE, 'v3'], site);
  await eventually(async () => (await pods('site-a')).length === 1 && realPod('v3'), 'site-a: only the v3 pod, running in containerd', 60_000, diag);
  // site-c's BundleDeployment names v3 (released for its return) while it last applied v1.
  const bd = await getJson(manager, ['bundledeployment', 'web.site-c']);
  assert.equal(bd.spec.deploymentID, bd.spec.stagedDeploymentID);
  assert.notEqual(bd.status.appliedDeploymentID, bd.spec.deploymentID);
  await siteC.restart();
  await eventually(async () => (await bundle())?.status?.display?.readyClusters === '3/3', 'site-c takes v3 on return', 120_000, diag);
  assert.deepEqual(await runs('site-c'), [TEST_IMAGE, 'v3']);
  await eventually(async () => (await pods('site-c')).some((p: any) => running(p) && p.metadata.annotations?.['fleet-test/version'] === 'v3'), 'site-c: a v3 pod running', 60_000, diag);
});
