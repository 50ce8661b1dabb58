// The web dashboard (issue 16) in a real browser: Debian's chromium driven by playwright-core against
// a real `skiff server` with hollow nodes. Signs in with tokens from `skiff dashboard token`, checks
// that the overview counts match the cluster, that lists follow the cluster live (watches, no reload),
// that scale and cordon from the UI reach the API, that a view-only token sees no write buttons and
// gets the API's 403 for a crafted write, and that the page logs no console errors. Screenshots of
// the main views land in the test's temp dir (SKIFF_DASHBOARD_SHOTS to keep them elsewhere).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { brotliDecompressSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, NETWORK_CHANGED, screenshotDir, signInAt } from '../helpers/dashboard-browser.js';
import { REPO_ROOT, startServer, API_ONLY, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { createHostNetwork, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost } from '../helpers/netns-host.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const SKIFF = join(REPO_ROOT, 'bin', 'skiff');

function skiff(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(SKIFF, args, { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout, stderr) =>
    err ? reject(new Error(`skiff ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout.trim())));
}

/** GET with no credentials at all: the dashboard's files need none. */
function fetchRaw(server: TestServer, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, any>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: server.port, path, headers, ca: server.caPem, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function spawnHollow(server: TestServer, dir: string, args: string[]): { proc: ChildProcess; ready: Promise<void> } {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const log = openSync(join(dir, 'hollow.log'), 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
  const proc = spawn(SKIFF, ['hollow', '--server', server.url, '--token', token, '--data-dir', dir, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', log] });
  closeSync(log);
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (/nodes ready/.test(out)) resolve(); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow exited (${code})\n${readFileSync(join(dir, 'hollow.log'), 'utf8').slice(-2000)}`)));
  });
  return { proc, ready };
}

test('the dashboard in a real browser', { timeout: 900_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  assert.ok(existsSync(join(REPO_ROOT, 'dist', 'dashboard', 'assets', 'manifest.json')), 'dashboard not built: npm run build');
  const work = mkdtempSync(join(tmpdir(), 'skiff-dashboard-'));
  const shots = screenshotDir();
  const server = await startServer();
  const hollowDir = join(work, 'hollow');
  mkdirSync(hollowDir);
  const hollow = spawnHollow(server, hollowDir, ['--count', '3', '--node-label', 'kubernetes.io/arch=arm64', '--pod-start-delay', '200', '--heartbeat-interval', '1']);
  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close();
    if (hollow.proc.exitCode === null) { hollow.proc.kill('SIGTERM'); await new Promise((r) => hollow.proc.once('exit', r)); }
    await server.dispose();
    rmSync(work, { recursive: true, force: true });
  });
  t.diagnostic(`screenshots: ${shots}`);
  await hollow.ready;
  const kc = ['--kubeconfig', server.kubeconfigPath];
  const adminToken = await skiff(['dashboard', 'token', ...kc, '--role', 'admin', '--duration', '1h']);
  const viewToken = await skiff(['dashboard', 'token', ...kc, '--role', 'view']);
  const base = `${server.url}/dashboard/`;

  await t.test('the files are served without credentials, compressed, cache-busted, under a strict CSP', async () => {
    const redirect = await fetchRaw(server, '/dashboard');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/dashboard/');
    const index = await fetchRaw(server, '/dashboard/', { 'accept-encoding': 'gzip, br' });
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-encoding'], 'br');
    assert.equal(index.headers['cache-control'], 'no-cache');
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    const html = brotliDecompressSync(index.body).toString();
    const js = /src="assets\/(main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    assert.ok(js, html);
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, 'no inline script');
    const asset = await fetchRaw(server, `/dashboard/assets/${js}`, { 'accept-encoding': 'gzip' });
    assert.equal(asset.status, 200);
    assert.equal(asset.headers['content-encoding'], 'gzip');
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.match(String(asset.headers['content-type']), /^text\/javascript/);
    const again = await fetchRaw(server, `/dashboard/assets/${js}`, { 'if-none-match': String(asset.headers.etag) });
    assert.equal(again.status, 304);
    assert.equal((await fetchRaw(server, '/dashboard/assets/nope.js')).status, 404);
    // The API itself still wants credentials.
    assert.equal((await fetchRaw(server, '/api/v1/pods')).status, 401);
  });

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const consoleErrors: string[] = [];
  /** Network failures the test causes on purpose (401 for the bad token, 403 for the view user). */
  let expectedHttpErrors = false;
  let expectedConflicts = false;
  const openPage = async (): Promise<Page> => {
    const context = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);   // a shared, busy CPU
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (expectedHttpErrors && /Failed to load resource: the server responded with a status of 40[13]/.test(m.text())) return;
      // A refused edit (409) and an eviction a PodDisruptionBudget blocks (429) are what those tests provoke.
      if (expectedConflicts && /Failed to load resource: the server responded with a status of (409|429)/.test(m.text())) return;
      if (NETWORK_CHANGED.test(m.text())) return;
      // Hollow nodes run no containers, so a hollow pod's log request fails on the server (500).
      if (/status of 500/.test(m.text()) && /\/pods\/[^/]+\/log\?/.test(m.location().url)) return;
      consoleErrors.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 500 && !/\/pods\/[^/]+\/log\?/.test(r.url())) consoleErrors.push(`${r.status()} from ${r.request().method()} ${r.url()}`);
    });
    page.on('dialog', (d) => void d.accept());
    return page;
  };
  const signIn = (page: Page, token: string) => signInAt(page, base, token);
  const text = (page: Page, sel: string) => page.locator(sel).first().textContent({ timeout: 20_000 });
  const waitText = async (page: Page, sel: string, want: string | RegExp, what: string) =>
    eventually(async () => { const v = (await page.locator(sel).first().textContent({ timeout: 1000 }).catch(() => null)) ?? ''; return typeof want === 'string' ? v === want : want.test(v); },
      `${what} (${sel} = ${want}; last ${await text(page, sel).catch(() => '?')})`, 30_000,
      () => `page ${page.url()}`);

  const page = await openPage();

  await t.test('a bad token is refused with a message', async () => {
    expectedHttpErrors = true;
    await signIn(page, 'not-a-real-token');
    await waitText(page, '[data-test=login-message]', /refused this token/, 'the refusal message');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'nothing stored');
    expectedHttpErrors = false;
  });

  await t.test('an admin token signs in and the overview counts match the cluster', async () => {
    await signIn(page, adminToken);
    await page.waitForSelector('[data-test=nodes-total]');
    assert.match(await text(page, '[data-test=user]') ?? '', /system:serviceaccount:kube-system:skiff-dashboard-admin/);
    assert.ok(!page.url().includes(adminToken), 'the token is never in the URL');
    await waitText(page, '[data-test=nodes-total]', '3', 'three nodes');
    await waitText(page, '[data-test=nodes-ready]', '3', 'three Ready nodes');
    await waitText(page, '[data-test=arch-arm64]', 'arm64: 3', 'by architecture');
    const pods = await server.kubectl(['get', 'pods', '-A', '--no-headers']);
    const count = pods.stdout.trim() ? pods.stdout.trim().split('\n').length : 0;
    await waitText(page, '[data-test=pods-total]', String(count), 'the pod count kubectl sees');
  });

  const pod = `web-${process.pid}`;
  await t.test('a pod created with kubectl appears without a reload, and goes when deleted', async (tt) => {
    await page.click('nav a[data-nav=pods]');
    await waitText(page, '[data-test=pods-info]', /^\d+ of \d+ pods$/, 'the pod list loaded');
    // A mark in the page's window: a reload would lose it.
    await page.evaluate(() => { (window as any).skiffTestMark = 'still here'; });
    const created = Date.now();
    ok(await server.kubectl(['create', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace: 'default' },
      spec: { nodeName: 'hollow-0', containers: [{ name: 'app', image: 'busybox' }] },
    }) }));
    await page.waitForSelector(`.vrow[data-key="default/${pod}"]`, { timeout: 30_000 });
    // The issue asks for 2 s; durations are not asserted on this shared machine, only reported.
    tt.diagnostic(`the pod appeared in the list ${Date.now() - created} ms after kubectl create returned`);
    assert.equal(await page.evaluate(() => (window as any).skiffTestMark), 'still here', 'no reload');
    await waitText(page, `[data-test=status-default-${pod}]`, 'Running', 'the new pod Running in the list');
    await page.screenshot({ path: join(shots, 'pods.png') });
    // The namespace filter and the search box narrow the list.
    await page.selectOption('[data-test=namespace]', 'kube-system');
    await eventually(async () => (await page.locator(`.vrow[data-key="default/${pod}"]`).count()) === 0, 'default pods hidden in kube-system', 20_000);
    await page.selectOption('[data-test=namespace]', 'default');
    await page.waitForSelector(`.vrow[data-key="default/${pod}"]`);
    await page.fill('[data-test=search]', 'no-such-pod');
    await eventually(async () => (await page.locator('.vbody .vrow').count()) === 0, 'the search hiding every pod', 20_000);
    await page.fill('[data-test=search]', pod);
    await page.waitForSelector(`.vrow[data-key="default/${pod}"]`);
    await page.fill('[data-test=search]', '');
    await page.click(`.vrow[data-key="default/${pod}"] a`);
    await page.waitForSelector('[data-test=containers]');
    await page.screenshot({ path: join(shots, 'pod.png') });
    await page.click('nav a[data-nav=pods]');
    ok(await server.kubectl(['delete', 'pod', pod, '--wait=false']));
    await eventually(async () => (await page.locator(`.vrow[data-key="default/${pod}"]`).count()) === 0, 'the deleted pod leaving the list', 30_000);
  });

  await t.test('scaling a Deployment from the UI: replicas and pods follow', async () => {
    ok(await server.kubectl(['create', 'deployment', 'web', '--image=busybox', '--replicas=1']));
    await page.click('nav a[data-nav=workloads]');
    await page.waitForSelector('[data-test=scale-up-default-web]', { timeout: 20_000 });
    await page.click('[data-test=scale-up-default-web]');
    await waitText(page, '[data-test=replicas-default-web]', '2', 'two replicas shown');
    // A live update between the press and the release must not swallow the click (the table used
    // to rebuild its rows under the pressed button). The pause lets the update reach the page.
    const box = (await page.locator('[data-test=scale-up-default-web]').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    ok(await server.kubectl(['annotate', 'deployment', 'web', 'skiff.test/poke=1']));
    await new Promise((r) => setTimeout(r, 2000));
    await page.mouse.up();
    await waitText(page, '[data-test=replicas-default-web]', '3', 'three replicas shown after a press held across an update');
    ok(await server.kubectl(['scale', 'deployment', 'web', '--replicas=2']));
    await waitText(page, '[data-test=replicas-default-web]', '2', 'two replicas again');
    await eventually(async () => (await server.kubectl(['get', 'deploy', 'web', '-o', 'jsonpath={.spec.replicas}/{.status.readyReplicas}'])).stdout === '2/2', 'two ready replicas');
    await waitText(page, '[data-test=ready-default-web]', '2/2', 'the Ready column following');
    await page.screenshot({ path: join(shots, 'workloads.png') });
  });

  await t.test('cordoning a node from the UI', async () => {
    await page.click('nav a[data-nav=nodes]');
    await page.click('[data-test=cordon-hollow-1]', { timeout: 20_000 });
    await eventually(async () => (await server.kubectl(['get', 'node', 'hollow-1', '-o', 'jsonpath={.spec.unschedulable}'])).stdout === 'true', 'hollow-1 cordoned');
    await page.waitForSelector('[data-test=uncordon-hollow-1]', { timeout: 20_000 });
    await page.screenshot({ path: join(shots, 'nodes.png') });
    await page.click('nav a[data-nav=overview]');
    await waitText(page, '[data-test=nodes-cordoned]', '1', 'one cordoned node in the overview');
    await page.screenshot({ path: join(shots, 'overview.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, 'overview-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await t.test('the topology picture: every node with its pods', async () => {
    await page.click('nav a[data-nav=topology]');
    const pods = (await server.kubectl(['get', 'pods', '-A', '--no-headers'])).stdout.trim().split('\n').filter(Boolean).length;
    await waitText(page, '[data-test=topology-info]', `3 nodes, ${pods} pods on them`, 'the nodes and their pods drawn');
    await page.selectOption('[data-test=topology-group]', 'kubernetes.io/hostname');
    await page.click('[data-test=topology]', { position: { x: 10, y: 36 } });   // the first tile of the first group
    await page.waitForURL(/#\/node\/hollow-0$/);
    await page.goBack();
    await page.waitForSelector('[data-test=topology]');
    await page.screenshot({ path: join(shots, 'topology.png'), clip: { x: 0, y: 0, width: 1280, height: 400 } });
  });

  await t.test('draining a node from the UI: evictions honour a PodDisruptionBudget, DaemonSet pods stay', async () => {
    const guarded = `guarded-${process.pid}`, loose = `loose-${process.pid}`;
    const podOn = (name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels },
      spec: { nodeName: 'hollow-2', containers: [{ name: 'app', image: 'busybox' }] } });
    ok(await server.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      podOn(guarded, { app: 'guarded' }), podOn(loose, { app: 'loose' }),
      { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'guard', namespace: 'default' }, spec: { maxUnavailable: 0, selector: { matchLabels: { app: 'guarded' } } } },
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agentd', namespace: 'default' }, spec: { selector: { matchLabels: { app: 'agentd' } },
        template: { metadata: { labels: { app: 'agentd' } }, spec: { containers: [{ name: 'a', image: 'busybox' }] } } } },
    ] }) }));
    const onNode2 = async () => (await server.kubectl(['get', 'pods', '-A', '--field-selector', 'spec.nodeName=hollow-2', '-o', 'jsonpath={range .items[*]}{.metadata.name}{" "}{end}'])).stdout.trim().split(/\s+/).filter(Boolean);
    await eventually(async () => { const names = await onNode2(); return names.includes(guarded) && names.includes(loose) && names.some((n) => n.startsWith('agentd-')); }, 'the pods and the DaemonSet pod on hollow-2', 60_000);
    await eventually(async () => (await server.kubectl(['get', 'pdb', 'guard', '-o', 'jsonpath={.status.observedGeneration}'])).stdout === '1', 'the budget computed');
    await page.click('nav a[data-nav=nodes]');
    await page.click('.vrow[data-key="hollow-2"] a');
    expectedConflicts = true;
    await page.click('[data-test=drain-hollow-2]', { timeout: 20_000 });   // the confirm() is accepted
    await eventually(async () => (await server.kubectl(['get', 'node', 'hollow-2', '-o', 'jsonpath={.spec.unschedulable}'])).stdout === 'true', 'hollow-2 cordoned');
    // The loose pod is evicted; the guarded one is refused (429) and retried, with the API's message shown.
    await waitText(page, `[data-test=drain-msg-default-${guarded}]`, /disruption budget/, 'the budget\'s refusal shown');
    await eventually(async () => !(await onNode2()).includes(loose), 'the loose pod evicted', 60_000);
    assert.ok((await onNode2()).includes(guarded), 'the guarded pod stays while its budget forbids evicting it');
    await page.screenshot({ path: join(shots, 'drain.png'), clip: { x: 0, y: 0, width: 1280, height: 360 } });
    ok(await server.kubectl(['delete', 'pdb', 'guard']));
    await waitText(page, '[data-test=drain-status]', /^drained/, 'the drain finishing once the budget is gone');
    const left = await onNode2();
    assert.ok(!left.includes(guarded), `guarded evicted: ${left}`);
    assert.ok(left.every((n) => n.startsWith('agentd-')) && left.length === 1, `only the DaemonSet pod is left: ${left}`);
    expectedConflicts = false;
    ok(await server.kubectl(['delete', 'daemonset', 'agentd', '--wait=false']));
  });

  await t.test('editing a ConfigMap\'s YAML: the dry-run diff is shown, applied, seen by kubectl; a concurrent change gets the 409', async () => {
    const cm = `settings-${process.pid}`;
    ok(await server.kubectl(['create', 'configmap', cm, '--from-literal=greeting=hello', '--from-literal=colour=blue']));
    await page.click('nav a[data-nav=config]');
    await page.click(`[data-test=open-configmaps-default-${cm}]`, { timeout: 20_000 });
    await waitText(page, '[data-test=yaml]', /greeting: hello/, 'the YAML shown');
    await page.click('[data-test=yaml-edit]');
    const editor = page.locator('[data-test=yaml-editor]');
    await editor.fill((await editor.inputValue()).replace('greeting: hello', 'greeting: bonjour'));
    await page.click('[data-test=yaml-review]');
    await waitText(page, '[data-test=yaml-diff]', /-\s+greeting: hello\s*\+\s+greeting: bonjour/, 'the diff');
    const diff = await text(page, '[data-test=yaml-diff]');
    assert.doesNotMatch(diff ?? '', /[-+]\s+colour/, 'unchanged lines are context only');
    await page.screenshot({ path: join(shots, 'yaml-diff.png') });
    await page.click('[data-test=yaml-apply]');
    await eventually(async () => (await server.kubectl(['get', 'configmap', cm, '-o', 'jsonpath={.data.greeting}'])).stdout === 'bonjour', 'kubectl seeing the edit');
    await waitText(page, '[data-test=yaml]', /greeting: bonjour/, 'the live YAML following');
    // Someone else changes the object while this user edits: the edit is refused, not lost in silence.
    expectedConflicts = true;
    await page.click('[data-test=yaml-edit]');
    await editor.fill((await editor.inputValue()).replace('greeting: bonjour', 'greeting: hola'));
    ok(await server.kubectl(['patch', 'configmap', cm, '--type=merge', '-p', '{"data":{"greeting":"ciao"}}']));
    await page.click('[data-test=yaml-review]');
    await waitText(page, '[data-test=yaml-error]', /the object has been modified/, 'the API\'s 409 shown');
    assert.equal((await server.kubectl(['get', 'configmap', cm, '-o', 'jsonpath={.data.greeting}'])).stdout, 'ciao');
    await page.click('[data-test=yaml-reload]');
    await eventually(async () => (await editor.inputValue()).includes('greeting: ciao'), 'the editor restarted from the latest version');
    await page.click('[data-test=yaml-cancel]');
    expectedConflicts = false;
  });

  await t.test('a Secret\'s values stay hidden until revealed', async () => {
    const secret = `creds-${process.pid}`;
    ok(await server.kubectl(['create', 'secret', 'generic', secret, '--from-literal=password=s3cret-value']));
    await page.click('nav a[data-nav=config]');
    await page.click('[data-tab=secrets]');
    await page.click(`[data-test=open-secrets-default-${secret}]`, { timeout: 20_000 });
    await waitText(page, '[data-test=secret-value-password]', '••••••', 'the value hidden');
    await waitText(page, '[data-test=yaml]', /password: ••••••/, 'hidden in the YAML too');
    assert.doesNotMatch(await text(page, '[data-test=yaml]') ?? '', /czNjcmV0LXZhbHVl/, 'no base64 of the value in the YAML');
    await page.click('[data-test=reveal-secret]');
    await waitText(page, '[data-test=secret-value-password]', 's3cret-value', 'the value revealed');
  });

  await t.test('other kinds: Services, Namespaces, Events, and a CRD\'s objects with its printer columns', async () => {
    await page.click('nav a[data-nav=network]');
    await page.waitForSelector('[data-test=open-services-default-kubernetes]');
    await page.screenshot({ path: join(shots, 'services.png') });
    await page.click('nav a[data-nav=cluster]');
    await page.waitForSelector('[data-test=open-namespaces-kube-system]');
    await page.click('[data-tab=events]');
    await page.waitForSelector('[data-test=events-table] .vbody .vrow');
    ok(await server.kubectl(['create', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.dash.example.com' },
      spec: { group: 'dash.example.com', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } } } },
          additionalPrinterColumns: [{ name: 'Size', type: 'integer', jsonPath: '.spec.size' }] }] },
    }) }));
    await eventually(async () => (await server.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'dash.example.com/v1', kind: 'Widget', metadata: { name: 'w1', namespace: 'default' }, spec: { size: 7 } }) })).code === 0, 'a Widget created');
    await page.click('[data-tab=customresourcedefinitions]');
    await page.click('[data-test="open-customresourcedefinitions-widgets.dash.example.com"]', { timeout: 20_000 });
    await page.waitForSelector('[data-test=widgets-table] .vrow[data-key="default/w1"]');
    assert.ok((await page.locator('[data-test=widgets-table] .vhead').textContent())?.includes('Size'), 'the printer column');
    assert.ok((await page.locator('[data-test=widgets-table] .vrow[data-key="default/w1"]').textContent())?.includes('7'), 'its value');
    await page.screenshot({ path: join(shots, 'crd.png') });
    await page.click('[data-test=widgets-table] .vrow[data-key="default/w1"] a');
    await waitText(page, '[data-test=yaml]', /size: 7/, 'the custom object\'s YAML');
  });

  await t.test('a view-only token: no write buttons, and a crafted write gets the API\'s 403', async () => {
    expectedHttpErrors = true;
    const viewer = await openPage();
    await signIn(viewer, viewToken);
    await viewer.waitForSelector('[data-test=pods-total]');
    await viewer.click('nav a[data-nav=workloads]');
    await viewer.waitForSelector('[data-test=replicas-default-web]');
    // Give the access reviews time to answer (buttons appear only once allowed).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await viewer.locator('[data-test^=scale-up], [data-test^=restart-], [data-test^=delete-]').count(), 0, 'no write buttons');
    await viewer.click('nav a[data-nav=pods]');
    await viewer.waitForSelector('.vbody .vrow');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await viewer.locator('[data-test^=delete-pod]').count(), 0, 'no delete buttons');
    // An object's page: the YAML is there to read, but neither Edit nor Delete.
    await viewer.evaluate(() => { location.hash = '#/obj/configmaps/default/kube-root-ca.crt'; });
    await viewer.waitForSelector('[data-test=yaml]:has-text("ca.crt")');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await viewer.locator('[data-test=yaml-edit], [data-test^=delete-configmaps]').count(), 0, 'no Edit or Delete for a viewer');
    const r = await viewer.evaluate(async () => {
      const token = sessionStorage.getItem('skiff.dashboard.token');
      const res = await fetch('/apis/apps/v1/namespaces/default/deployments/web/scale', {
        method: 'PATCH', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/merge-patch+json' },
        body: JSON.stringify({ spec: { replicas: 5 } }),
      });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'Forbidden');
    assert.match(r.body.message, /system:serviceaccount:kube-system:skiff-dashboard-view" cannot patch resource "deployments\/scale"/);
    await viewer.click('[data-test=logout]');
    await viewer.waitForSelector('[data-test=token]');
    assert.equal(await viewer.evaluate(() => sessionStorage.length), 0, 'signing out forgets the token');
    // A token that stops working mid-session (expired, revoked) brings back sign-in with a message.
    await signIn(viewer, viewToken);
    await viewer.waitForSelector('[data-test=nodes-total]');
    await viewer.evaluate(() => sessionStorage.setItem('skiff.dashboard.token', 'revoked'));
    await viewer.evaluate(() => { location.hash = '#/node/hollow-0'; });
    await waitText(viewer, '[data-test=login-message]', /session has ended/, 'the expiry message');
    assert.equal(await viewer.evaluate(() => sessionStorage.length), 0, 'the dead token is forgotten');
    await viewer.context().close();
    expectedHttpErrors = false;
  });

  await t.test('no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

test('with a real agent: a pod\'s logs stream new lines, and the exec terminal runs a command', { timeout: 300_000 }, async (t) => {
  const missing = netnsAgentRequirements();
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  assert.deepEqual(missing, [], `the real-agent dashboard test needs: ${missing.join(', ')}`);
  const subnet = `10.197.${process.pid % 250}`;
  const host: NetnsHost = { name: `dash-${process.pid}`, netns: `skdash${process.pid}`, hostIf: `skvd${process.pid}`, hostIp: `${subnet}.1`, ip: `${subnet}.2`, dir: '' };
  let browser: Browser | undefined;
  let server: TestServer | undefined;
  t.after(async () => {
    await browser?.close();
    host.proc?.kill('SIGKILL');
    if (host.dir) await teardownRuntime({ dataDir: host.dir, removeDataDir: true }).catch(() => undefined);
    removeHostNetwork(host);
    await server?.dispose();
  });
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-dash-');
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--tls-san', host.hostIp] });
  startNetnsAgent(host, server, readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim());
  const agentLog = () => { try { return readFileSync(join(host.dir, 'agent.log'), 'utf8').slice(-3000); } catch { return ''; } };
  const s = server;
  await eventually(async () => (await s.kubectl(['get', 'node', host.name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout === 'True', 'the agent\'s node Ready', 90_000, agentLog);
  ok(await s.kubectl(['create', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'ticker', namespace: 'default' },
    spec: { nodeName: host.name, containers: [{ name: 'tick', image: TEST_IMAGE, imagePullPolicy: 'Never',
      command: ['sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done'] }] },
  }) }));
  await eventually(async () => (await s.kubectl(['get', 'pod', 'ticker', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', 'ticker Running', 90_000, agentLog);
  const token = await skiff(['dashboard', 'token', '--kubeconfig', s.kubeconfigPath, '--role', 'admin']);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 } })).newPage();
  page.setDefaultTimeout(60_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' && !NETWORK_CHANGED.test(m.text())) consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  await signInAt(page, `${s.url}/dashboard/#/pod/default/ticker`, token);
  await page.waitForSelector('[data-test=logs]');
  const logs = () => page.locator('[data-test=logs]').textContent();
  const first = await eventually(async () => { const m = /tick-(\d+)\n?$/.exec((await logs())?.trimEnd() ?? ''); return m ? Number(m[1]) : undefined; }, 'log lines', 30_000);
  await eventually(async () => (await logs())?.includes(`tick-${first + 3}`), 'new log lines streamed while following', 30_000);

  await page.click('[data-test=exec-open]');
  await page.waitForSelector('.xterm-rows');
  await page.locator('.xterm').click();
  await new Promise((r) => setTimeout(r, 500));
  await page.keyboard.type('echo dash-$((6*7))\n');
  const term = () => page.locator('.xterm-rows').textContent();
  await eventually(async () => (await term())?.includes('dash-42'), 'the echo output in the terminal', 30_000, () => String(consoleErrors));
  await page.keyboard.type('exit 3\n');
  await eventually(async () => (await term())?.includes('[exited 3'), 'the exit shown in the terminal', 30_000);
  await page.screenshot({ path: join(screenshotDir(), 'pod-logs-exec.png') });
  // A real node has metrics: the overview draws its CPU and memory charts (uPlot, under the CSP).
  await page.click('nav a[data-nav=overview]');
  await page.waitForSelector('.uplot canvas', { timeout: 60_000 });
  await new Promise((r) => setTimeout(r, 21_000));   // three samples make a line in the screenshot
  await page.screenshot({ path: join(screenshotDir(), 'overview-metrics.png') });
  assert.deepEqual(consoleErrors, []);
});

test('--disable-dashboard turns the dashboard off', async () => {
  const server = await startServer({ args: [...API_ONLY, '--disable-dashboard'] });
  try {
    const r = await server.request('GET', '/dashboard/');
    assert.equal(r.status, 404, r.body);
  } finally {
    await server.dispose();
  }
});
