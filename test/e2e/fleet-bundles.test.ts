// Fleet bundles end to end (issue 17 items 2 and 3), lean: one manager, three real `skiff server`
// sites on loopback (eu-1 and eu-2 with region=eu, us-1 with region=us; API servers only, which is
// all ConfigMaps need) and six hollow clusters in this process (the same SiteConnection and bundles
// stream as a real site; "running" a Deployment means reporting it Ready).
// A git repository is served by git's own http-backend from this test.
//
// - A GitRepo whose bundle targets region=eu reaches exactly eu-1 and eu-2, each with its own
//   values in a ConfigMap; a broken path and a missing one are named in the GitRepo's condition
//   while the good path deploys. A commit reaches the sites at once through the webhook (the
//   polling interval is an hour); an object removed from the repo is deleted on the sites; an object
//   deleted on a site by hand comes back (drift); deleting the GitRepo deletes them on the sites.
// - A bundle whose manifests are in a ConfigMap reaches the one cluster it names, json-patched.
// - A change to a bundle with automatic partitions reaches every hollow cluster (the broken image,
//   the paused rollout and the offline site are tested on real sites in fleet-rollout.test.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { request } from 'node:https';
import { join } from 'node:path';
import { API_ONLY, startServer, type TestServer } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';
import { ok } from '../helpers/kubectl.js';
import { fleetToken, getJson, GitWorkTree, readyOf, siteFlags, startGitServer, type GitServer } from '../helpers/fleet.js';
import { HollowClusters } from '../../src/fleet/hollow-clusters.js';

const RUN = `fb${process.pid}`;
const work = mkdtempSync(`/tmp/skiff-${RUN}-`);
const SITES: Record<string, Record<string, string>> = { 'eu-1': { region: 'eu' }, 'eu-2': { region: 'eu' }, 'us-1': { region: 'us' } };
let manager: TestServer;
const sites = new Map<string, TestServer>();
let gitServer: GitServer | undefined;
let repo: GitWorkTree;
let hollow: HollowClusters | undefined;

/** The manager's fleet objects and its log tail: what a failed wait prints. */
const diag = () => `${spawnSync('kubectl', ['--kubeconfig', manager.kubeconfigPath, 'get', 'gitrepos,bundles,bundledeployments', '-A', '-o', 'yaml'], { encoding: 'utf8' }).stdout}\n${manager.logTail()}`;
const mk = (args: string[], input?: string) => manager.kubectl(args, input === undefined ? {} : { input });
const apply = async (obj: unknown) => ok(await mk(['apply', '-f', '-'], JSON.stringify(obj)));
const bundle = (name: string) => getJson(manager, ['bundle', name]);
const siteConfigMap = (site: string, name: string) => getJson(sites.get(site)!, ['configmap', name, '-n', 'fleet-demo']);

function postWebhook(payload: unknown): Promise<{ status: number; body: string }> {
  const body = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request(`${manager.url}/v1-skiff/fleet/webhook`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json', 'x-github-event': 'push' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const appV1 = `apiVersion: v1
kind: ConfigMap
metadata:
  name: site-info
data:
  site: \${ .ClusterName }
  region: \${ .ClusterLabels.region }
  greeting: \${ .Values.greeting }
  version: "1"
`;

before(async () => {
  manager = await startServer({ args: [...API_ONLY, '--fleet-offline-grace', '6'] });
  const token = fleetToken(manager);
  await Promise.all(Object.entries(SITES).map(async ([name, labels]) => {
    sites.set(name, await startServer({ args: [...API_ONLY, ...siteFlags(manager, token, name, labels), '--fleet-drift-interval', '3'] }));
  }));
  hollow = new HollowClusters({
    server: manager.url, token, count: 6, namePrefix: 'hollow-', labels: { region: 'lab' }, nodes: 1, heartbeatMs: 2000, concurrency: 3,
  });
  await hollow.start(120_000);
  gitServer = await startGitServer(work);
  repo = new GitWorkTree(work, 'config');
  repo.write({
    'app/site-info.yaml': appV1,
    'app/extra.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n',
    'app/fleet.yaml': 'defaultNamespace: fleet-demo\n',
    'broken/bad.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n',
    'README.md': 'not a manifest',
  }).commit('v1');
});

after(async () => {
  hollow?.stop();
  await gitServer?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('sites and hollow clusters register and are Ready', async () => {
  await eventually(async () => {
    const list = await getJson(manager, ['clusters']);
    return list?.items.filter((c: any) => readyOf(c) === 'True').length === 9;
  }, 'nine Ready clusters', 120_000, diag);
});

test('a GitRepo bundle targeting region=eu reaches exactly the eu sites, with per-site values; bad paths are named', async () => {
  await apply({
    apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'GitRepo', metadata: { name: 'config', namespace: 'default' },
    spec: {
      repo: gitServer!.url('config'), branch: 'main', paths: ['app', 'broken', 'missing'], pollingInterval: '1h',
      targets: [{ name: 'eu', clusterSelector: { matchLabels: { region: 'eu' } }, values: { greeting: 'hello ${ .ClusterLabels.region }' } }],
    },
  });
  for (const site of ['eu-1', 'eu-2']) {
    const cm = await eventually(() => siteConfigMap(site, 'site-info'), `site-info on ${site}`, 60_000, diag);
    assert.deepEqual(cm.data, { site, region: 'eu', greeting: 'hello eu', version: '1' });
    const fields = await getJson(sites.get(site)!, ['configmap', 'site-info', '-n', 'fleet-demo', '--show-managed-fields']);
    assert.equal(fields.metadata.managedFields.find((f: any) => f.operation === 'Apply')?.manager, 'skiff-fleet-agent');
  }
  const b = await eventually(async () => { const x = await bundle('config-app'); return x?.status?.display?.readyClusters === '2/2' ? x : undefined; }, 'bundle 2/2', 60_000);
  assert.equal(b.status.summary.desiredReady, 2);
  assert.equal(await siteConfigMap('us-1', 'site-info'), undefined, 'us-1 is not targeted');
  // The Cluster's Bundles-Ready column sums its BundleDeployments (us-1 has none).
  await eventually(async () => /^eu-1\s.*\s1\/1\s+\S+$/m.test((await mk(['get', 'clusters', 'eu-1', 'us-1', '--no-headers'])).stdout), 'eu-1 bundles ready 1/1', 30_000, diag);
  assert.match(ok(await mk(['get', 'clusters', 'us-1', '--no-headers'])), /\s0\/0\s+\S+$/m);
  const bds = ok(await mk(['get', 'bundledeployments', '-l', 'fleet.skiff.io/bundle-name=config-app', '--no-headers']));
  assert.deepEqual(bds.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' ')).sort(), ['config-app.eu-1 eu-1', 'config-app.eu-2 eu-2']);
  const table = ok(await mk(['get', 'bundles']));
  assert.match(table.split('\n')[0]!, /^NAME\s+CLUSTERS-READY\s+STATE\s+AGE$/);
  assert.match(table, /^config-app\s+2\/2\s+Ready\s/m);
  const gr = await eventually(async () => { const x = await getJson(manager, ['gitrepo', 'config']); return x?.status?.commit ? x : undefined; }, 'gitrepo status', 30_000);
  const ready = gr.status.conditions.find((c: any) => c.type === 'Ready');
  assert.equal(ready.status, 'False');
  assert.match(ready.message, /path "broken": bad\.yaml: invalid YAML/);
  assert.match(ready.message, /path "missing": no such directory/);
  assert.match(ok(await mk(['get', 'gitrepos'])), /^config\s+http:\/\/127\.0\.0\.1:\d+\/config\.git\s+[0-9a-f]{40}\s+1\/3\s+InvalidContent\s/m);
});

test('a commit reaches the eu sites at once through the webhook; removed objects are deleted, drift corrected', async () => {
  assert.ok(await siteConfigMap('eu-1', 'extra'), 'extra exists before');
  const commit = repo.write({ 'app/site-info.yaml': appV1.replace('version: "1"', 'version: "2"'), 'app/extra.yaml': null }).commit('v2');
  const r = await postWebhook({ ref: 'refs/heads/main', after: commit, repository: { clone_url: gitServer!.url('config') } });
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /1 GitRepo\(s\) polled/);
  for (const site of ['eu-1', 'eu-2']) {
    await eventually(async () => (await siteConfigMap(site, 'site-info'))?.data?.version === '2', `version 2 on ${site}`, 60_000, diag);
    await eventually(async () => (await siteConfigMap(site, 'extra')) === undefined, `extra deleted on ${site}`, 30_000);
  }
  assert.equal((await getJson(manager, ['gitrepo', 'config'])).status.commit, commit);
  // Drift: deleted by hand on the site, back within the site's drift interval.
  ok(await sites.get('eu-2')!.kubectl(['delete', 'configmap', 'site-info', '-n', 'fleet-demo']));
  await eventually(() => siteConfigMap('eu-2', 'site-info'), 'site-info back on eu-2', 30_000);
});

test('deleting the GitRepo removes its bundle and the objects on the sites', async () => {
  ok(await mk(['delete', 'gitrepo', 'config']));
  await eventually(async () => (await bundle('config-app')) === undefined, 'bundle config-app gone', 30_000, diag);
  for (const site of ['eu-1', 'eu-2']) await eventually(async () => (await siteConfigMap(site, 'site-info')) === undefined, `site-info deleted on ${site}`, 30_000);
});

test('a bundle from a ConfigMap with a per-target patch reaches its one cluster', async () => {
  ok(await mk(['create', 'configmap', 'us-manifests', '--from-literal', `limits.yaml=apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: fleet-demo}
data:
  max: "10"
  site: \${ .ClusterName }
`]));
  await apply({
    apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'Bundle', metadata: { name: 'limits', namespace: 'default' },
    spec: {
      resourcesFrom: [{ configMapRef: { name: 'us-manifests' } }],
      targets: [{ clusterName: 'us-1', patches: [{ kind: 'ConfigMap', name: 'limits', type: 'json', patch: [{ op: 'replace', path: '/data/max', value: '20' }] }] }],
    },
  });
  const cm = await eventually(() => siteConfigMap('us-1', 'limits'), 'limits on us-1', 60_000, diag);
  assert.deepEqual(cm.data, { max: '20', site: 'us-1' });
  // The site reports after applying; the Bundle sums the reports a moment later.
  await eventually(async () => /^limits\s+1\/1\s+Ready\s/m.test(ok(await mk(['get', 'bundle', 'limits']))), 'limits 1/1 Ready', 30_000, diag);
});

const web = (image: string) => ({
  apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'Bundle', metadata: { name: 'web', namespace: 'default' },
  spec: {
    resources: [{ name: 'web.yaml', content: `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: "${image}"}]}\n` }],
    targets: [{ clusterSelector: { matchLabels: { region: 'lab' } } }],
    rolloutStrategy: { autoPartitionSize: '33%' },
  },
});

/** Cluster → the content version its site runs (the hollow clusters' own record; the options part of an id differs per cluster). */
const running = () => new Map([...hollow!.applied].map(([c, m]) => [c, m.get('default/web.' + c)?.split(':')[0]]));

// The broken image, the pause naming the partition, the held-back partitions and the offline site
// are tested on real sites with real pods in fleet-rollout.test.ts; this keeps the automatic
// partitions over hollow clusters (the scale path bench/fleet.ts times).
test('a change rolls out over automatic partitions of hollow clusters', async () => {
  await apply(web('busybox:v1'));
  await eventually(async () => (await bundle('web'))?.status?.display?.readyClusters === '6/6', 'v1 on all six', 60_000, diag);
  const v1 = running().get('hollow-5');
  await apply(web('busybox:v2'));
  const done = await eventually(async () => {
    const b = await bundle('web');
    return b?.status?.display?.readyClusters === '6/6' && b.status.contentHash !== undefined && [...running().values()].every((v) => v !== v1) ? b : undefined;
  }, 'v2 on all six', 60_000, diag);
  // 33 % of six clusters, rounded up: three partitions of two, by name.
  assert.deepEqual(done.status.partitions.map((p: any) => [p.name, p.count]), [['auto-0', 2], ['auto-1', 2], ['auto-2', 2]]);
  assert.equal(done.status.conditions.find((x: any) => x.type === 'RolloutPaused')?.reason, 'AllPartitionsReady');
  assert.equal(new Set(running().values()).size, 1, 'one version everywhere');
});
