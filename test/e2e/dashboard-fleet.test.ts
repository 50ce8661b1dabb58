// The dashboard's fleet pages (issue 17 item 5) in a real browser (Debian's chromium driven by
// playwright-core) against one `skiff server` as fleet manager, with five hollow clusters in this
// process (they register, heartbeat and take bundles as real sites do; one image they "cannot pull"
// gives a staged rollout something to stop on). Signed in with a view-only token:
// - the Clusters list shows the sites with their state, nodes and bundles ready (1/1 once a bundle
//   lands), and a stopped site turns Offline without a reload;
// - the Bundles list and a bundle's page show the rollout: a broken version stops at its canary
//   partition with the RolloutPaused condition's message, the next partition Waiting, each cluster's
//   BundleDeployment state (the offline one Offline);
// - no console errors. Screenshots go where the dashboard test puts its own (SKIFF_DASHBOARD_SHOTS).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, startServer, API_ONLY, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { fleetToken, getJson, readyOf } from '../helpers/fleet.js';
import { CHROMIUM, NETWORK_CHANGED, screenshotDir, signInAt } from '../helpers/dashboard-browser.js';
import { HollowClusters } from '../../src/fleet/hollow-clusters.js';

const SKIFF = join(REPO_ROOT, 'bin', 'skiff');
const skiff = (args: string[]) => new Promise<string>((resolve, reject) => execFile(SKIFF, args, { cwd: REPO_ROOT, timeout: 30_000 },
  (err, stdout, stderr) => (err ? reject(new Error(`skiff ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout.trim()))));

const web = (image: string) => ({
  apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'Bundle', metadata: { name: 'web', namespace: 'default' },
  spec: {
    resources: [{ name: 'web.yaml', content: `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: "${image}"}]}\n` }],
    targets: [{ clusterSelector: { matchLabels: { region: 'eu' } } }],
    rolloutStrategy: {
      partitions: [
        { name: 'canary', clusterSelector: { matchExpressions: [{ key: 'fleet.skiff.io/hollow-index', operator: 'In', values: ['0', '1'] }] } },
        { name: 'rest', clusterSelector: { matchLabels: { region: 'eu' } } },
      ],
    },
  },
});

let server: TestServer | undefined;
let hollow: HollowClusters | undefined;
let browser: Browser | undefined;
after(async () => {
  await browser?.close();
  hollow?.stop();
  await server?.dispose();
});

test('the fleet in the dashboard: clusters, bundles ready, Offline, a paused rollout', { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  assert.ok(existsSync(join(REPO_ROOT, 'dist', 'dashboard', 'assets', 'manifest.json')), 'dashboard not built: npm run build');
  const shots = screenshotDir();
  t.diagnostic(`screenshots: ${shots}`);
  server = await startServer({ args: [...API_ONLY, '--fleet-offline-grace', '6'] });
  const manager = server;
  const diag = () => `${spawnSync('kubectl', ['--kubeconfig', manager.kubeconfigPath, 'get', 'clusters,bundles,bundledeployments', '-A'], { encoding: 'utf8' }).stdout}\n${manager.logTail()}`;
  hollow = new HollowClusters({
    server: server.url, token: fleetToken(server), count: 5, namePrefix: 'edge-', labels: { region: 'eu', tier: 'shop' }, nodes: 2,
    heartbeatMs: 2000, concurrency: 3, unpullableImages: /:broken$/,
  });
  const viewToken = skiff(['dashboard', 'token', '--kubeconfig', server.kubeconfigPath, '--role', 'view']);
  await hollow.start(120_000);
  ok(await server.kubectl(['apply', '-f', '-'], { input: JSON.stringify(web('busybox:v1')) }));
  await eventually(async () => (await getJson(manager, ['bundle', 'web']))?.status?.display?.readyClusters === '5/5', 'web v1 on all five', 60_000, diag);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' && !NETWORK_CHANGED.test(m.text())) consoleErrors.push(`${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  const text = (sel: string) => page.locator(sel).first().textContent({ timeout: 1000 }).catch(() => null);
  const waitText = (sel: string, want: string | RegExp, what: string) => {
    let last: string | null = null;
    return eventually(async () => {
      const v = last = await text(sel);
      return v !== null && (typeof want === 'string' ? v === want : want.test(v)) ? v : undefined;
    }, `${what} (${sel} = ${want})`, 30_000, () => `page ${page.url()}: last ${JSON.stringify(last)}\n${diag()}`);
  };

  await signInAt(page, `${server.url}/dashboard/`, await viewToken);
  await page.waitForSelector('[data-test=user]');

  await t.test('the Clusters list: state, nodes, bundles ready; a stopped site turns Offline live', async () => {
    await page.click('nav a[data-nav=fleet]');
    await waitText('[data-test=clusters-info]', /^5 of 5 clusters: 5 Ready, 0 Offline$/, 'five Ready clusters');
    for (let i = 0; i < 5; i++) {
      await waitText(`[data-test=cluster-state-edge-${i}]`, 'Ready', `edge-${i} Ready`);
      await waitText(`[data-test=cluster-bundles-edge-${i}]`, '1/1', `edge-${i} bundles ready 1/1`);
    }
    const row = await page.locator('.vrow[data-key="edge-0"]').textContent();
    assert.match(row ?? '', /edge-0\s*Ready\s*2\/2\s*1\/1\s*v1\.32\.4\+skiff-hollow/);
    assert.match(row ?? '', /region=eu/);
    assert.doesNotMatch(row ?? '', /hollow-index/, 'skiff\'s own labels are not the site\'s');
    await page.evaluate(() => { (window as any).skiffTestMark = 'still here'; });
    hollow!.sites[4]!.stop();
    await waitText('[data-test=cluster-state-edge-4]', 'Offline', 'edge-4 Offline');
    await waitText('[data-test=cluster-bundles-edge-4]', '0/1', 'an offline cluster counts no bundle Ready');
    await waitText('[data-test=clusters-info]', /^5 of 5 clusters: 4 Ready, 1 Offline$/, 'the counts');
    assert.equal(await page.evaluate(() => (window as any).skiffTestMark), 'still here', 'no reload');
    assert.equal(await page.locator('.vrow[data-key="edge-4"] .badge.bad').count(), 1, 'Offline is shown in red');
    // kubectl says the same.
    const kc = ok(await manager.kubectl(['get', 'clusters', '--no-headers']));
    assert.match(kc, /^edge-0\s+True\s+2\/2\s+v1\.32\.4\+skiff-hollow\s+\S+\s+1\/1\s/m);
    assert.match(kc, /^edge-4\s+False\s+2\/2\s+\S+\s+\S+\s+0\/1\s/m);
    const status = await skiff(['fleet', 'status', '--kubeconfig', manager.kubeconfigPath]);
    t.diagnostic(`kubectl get clusters:\n${kc}\nskiff fleet status:\n${status}`);
    assert.match(status, /^NAME\s+READY\s+STATE\s+NODES\s+VERSION\s+LAST-SEEN\s+BUNDLES-READY\s+LABELS$/m);
    assert.match(status, /^edge-4\s+False\s+Offline\s+2\/2\s+\S+\s+\S+\s+0\/1\s+region=eu,tier=shop$/m);
    assert.match(status, /5 clusters: 4 ready, 1 offline, 0 other; bundle deployments: 4 of 5 ready/);
    await page.screenshot({ path: join(shots, 'fleet-clusters.png'), clip: { x: 0, y: 0, width: 1280, height: 420 } });
    // A Cluster opens its own page (the generic object page: conditions in the YAML).
    await page.click('[data-test=cluster-edge-4]');
    await waitText('[data-test=yaml]', /reason: MissedHeartbeats/, 'edge-4\'s YAML');
    assert.equal(await page.locator('nav a.active').getAttribute('data-nav'), 'fleet');
    await page.goBack();
    await page.waitForSelector('[data-test=clusters-table]');
  });

  await t.test('a broken version stops at the canary partition: the Bundles list and the rollout page show why', async () => {
    ok(await manager.kubectl(['apply', '-f', '-'], { input: JSON.stringify(web('busybox:broken')) }));
    await page.click('[data-tab=fleet-bundles]');
    await waitText('[data-test=bundle-state-default-web]', 'RolloutPaused', 'web RolloutPaused in the list');
    await waitText('[data-test=bundles-info]', /1 of 1 bundles, 1 with a paused rollout/, 'the list line');
    const row = (await page.locator('.vrow[data-key="default/web"]').textContent()) ?? '';
    assert.match(row, /canary 0\/2/);
    assert.match(row, /partition "canary" is not Ready on edge-0, edge-1/);
    await page.screenshot({ path: join(shots, 'fleet-bundles.png'), clip: { x: 0, y: 0, width: 1280, height: 300 } });

    await page.click('[data-test=bundle-default-web]');
    const message = await waitText('[data-test=paused-message]', /partition "canary" is not Ready/, 'the paused condition\'s message');
    assert.match(message, /^partition "canary" is not Ready on edge-0, edge-1 \(ErrImagePull: busybox:broken \(simulated\)/);
    await waitText('[data-test=partition-state-canary]', 'RolloutPaused', 'canary holds the rollout');
    await waitText('[data-test=partition-state-rest]', 'Waiting', 'rest waits');
    const canary = (await page.locator('[data-test=partition-canary]').textContent()) ?? '';
    assert.match(canary, /canary2/, 'name and count');
    for (const c of ['edge-0', 'edge-1']) await waitText(`[data-test=bd-state-${c}]`, 'NotReady', `${c} NotReady`);
    for (const c of ['edge-2', 'edge-3']) await waitText(`[data-test=bd-state-${c}]`, 'Waiting', `${c} waits for its partition`);
    await waitText('[data-test=bd-state-edge-4]', 'Offline', 'edge-4 Offline');
    await waitText('[data-test=deployments-info]', '5 of 5 clusters targeted, 0 Ready', 'the deployments line');
    // The clusters' own column follows: the canary's bundle is no longer Ready there.
    const c0 = await eventually(async () => { const c = await getJson(manager, ['cluster', 'edge-0']); return c?.status?.display?.readyBundles === '0/1' ? c : undefined; }, 'edge-0 0/1', 30_000);
    assert.deepEqual(c0.status.summary.nonReadyBundles, ['default/web']);
    assert.equal(readyOf(c0), 'True');
    await page.screenshot({ path: join(shots, 'fleet-rollout.png') });
  });

  await t.test('no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
