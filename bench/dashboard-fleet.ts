// The dashboard's Clusters page at fleet scale (issue 17 item 5), in the real browser (Debian chromium
// via playwright-core): a server with CLUSTERS Cluster objects written straight through the API (with
// a status as the manager writes it, then made Offline by the server's fleet manager: no sites, so
// the server is not busy with tunnels), then, signed in with a view token:
//  - from opening #/fleet/clusters (a fresh page load) to the first rows drawn, and to every cluster
//    counted (the summary line right);
//  - the longest frame while scrolling the list for 3 s;
//  - the bytes of the list the page fetched.
// Run: node --import tsx bench/dashboard-fleet.ts [CLUSTERS=2000] (after `npm run build`).
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium, type Page } from 'playwright-core';
import { startBenchServer, type BenchServer } from './lib/server.js';

const N = Number(process.argv[2] ?? 2000);
const ROOT = join(import.meta.dirname, '..');
const PATH = '/apis/fleet.skiff.io/v1alpha1/clusters';

function adminAgent(server: BenchServer): https.Agent {
  const kc = readFileSync(server.kubeconfigPath, 'utf8');
  const b64 = (k: string) => Buffer.from(new RegExp(`${k}: (\\S+)`).exec(kc)![1]!, 'base64').toString();
  return new https.Agent({ keepAlive: true, maxSockets: 16, ca: b64('certificate-authority-data'), cert: b64('client-certificate-data'), key: b64('client-key-data') });
}

function call(server: BenchServer, agent: https.Agent, method: string, path: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request({ host: '127.0.0.1', port: server.port, method, path, agent,
      headers: data ? { 'content-type': type, 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function createClusters(server: BenchServer, agent: https.Agent): Promise<void> {
  // Last seen an hour ago: the server's own fleet manager (which writes these Clusters' status too,
  // and knows no site for them) finds them Offline at once and then leaves them alone, so no write
  // storm (a grace period after a recent lastSeen) lands in the middle of the measurement.
  const now = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  let next = 0;
  const one = async (i: number) => {
    const name = `site-${String(i).padStart(5, '0')}`;
    const r = await call(server, agent, 'POST', PATH, { apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'Cluster',
      metadata: { name, labels: { region: ['eu', 'us', 'ap'][i % 3]!, tier: 'edge' } }, spec: {} });
    if (r.status !== 201) throw new Error(`create cluster: ${r.status} ${r.body.slice(0, 200)}`);
    const offline = i % 10 === 9;
    const status = {
      version: 'v1.32.4+skiff', nodes: { ready: 3, total: 3 }, capacity: { cpu: '12', memory: '24Gi', pods: '330' }, lastSeen: now,
      conditions: [{ type: 'Ready', status: offline ? 'False' : 'True', reason: offline ? 'Offline' : 'Heartbeating', lastTransitionTime: now },
        { type: 'Offline', status: offline ? 'True' : 'False', reason: offline ? 'MissedHeartbeats' : 'Heartbeating', lastTransitionTime: now }],
      summary: { desiredReady: 2, ready: offline ? 0 : 2, notReady: 0, pending: 0, waitApplied: 0, errApplied: 0, offline: offline ? 2 : 0 },
      display: { nodes: '3/3', state: offline ? 'Offline' : 'Ready', readyBundles: offline ? '0/2' : '2/2' },
    };
    const s = await call(server, agent, 'PATCH', `${PATH}/${name}/status`, { status }, 'application/merge-patch+json');
    if (s.status !== 200) throw new Error(`cluster status: ${s.status} ${s.body.slice(0, 200)}`);
  };
  await Promise.all(Array.from({ length: 16 }, async () => { while (next < N) await one(next++); }));
}

const text = (sel: string) => `(document.querySelector('${sel}')?.textContent ?? '')`;
const waitFor = (page: Page, expr: string) => page.waitForFunction(expr, undefined, { timeout: 300_000, polling: 'raf' });

const server = await startBenchServer(['--log-level', 'warn', '--disable-controller-manager']);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const agent = adminAgent(server);
try {
  let t = performance.now();
  await createClusters(server, agent);
  console.log(`setup: ${N} Clusters with status written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const token = execFileSync(join(ROOT, 'bin', 'skiff'), ['dashboard', 'token', '--kubeconfig', server.kubeconfigPath, '--role', 'view']).toString().trim();
  // bypassCSP: the measuring snippets are strings evaluated in the page, which the dashboard's CSP forbids.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  let listBytes = 0;
  page.on('requestfinished', async (req) => {
    if (!/\/clusters\?.*limit=/.test(req.url())) return;
    listBytes += (await req.sizes().catch(() => undefined))?.responseBodySize ?? 0;
  });
  const base = `https://127.0.0.1:${server.port}/dashboard/`;
  await page.goto(base);
  await page.fill('[data-test=token]', token);
  await page.click('[data-test=login]');
  await page.waitForSelector('[data-test=user]');
  t = performance.now();
  await page.goto(`${base}#/fleet/clusters`);
  await page.waitForSelector('[data-test=clusters-table] .vbody .vrow', { timeout: 300_000 });
  const firstRows = performance.now() - t;
  await waitFor(page, `${text('[data-test=clusters-info]')}.startsWith('${N} of ${N} clusters:')`);
  const all = performance.now() - t;
  // Watch events while scrolling would be part of the figure: wait until the manager is done with them.
  await new Promise((r) => setTimeout(r, 5000));
  const worst = await page.evaluate(`new Promise((resolve) => {
    const el = document.querySelector('[data-test=clusters-table]');
    let last = performance.now(), worst = 0;
    const end = last + 3000;
    const step = (now) => {
      worst = Math.max(worst, now - last); last = now;
      el.scrollTop += 600;
      if (now < end) requestAnimationFrame(step); else resolve(worst);
    };
    requestAnimationFrame(step);
  })`) as number;
  console.log(`fleet clusters page: ${N} clusters: first rows ${(firstRows / 1000).toFixed(2)} s, all counted ${(all / 1000).toFixed(2)} s, `
    + `longest frame scrolling ${worst.toFixed(0)} ms, list ${(listBytes / 1024).toFixed(0)} KB (${(listBytes / N).toFixed(0)} B/cluster)`);
} finally {
  await browser.close();
  agent.destroy();
  await server.stop();
}
