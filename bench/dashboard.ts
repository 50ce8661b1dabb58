// Dashboard benchmark (issue 16), in the real browser (Debian chromium via playwright-core): a server,
// `skiff hollow --count NODES`, PODS_PER_NODE pods bound to each hollow node, then:
//  - overview: from clicking Sign in to the node and pod totals being right (first meaningful paint:
//    the totals come with the first page of each list), and to every pod counted by phase (complete);
//  - pod list, after a page reload (nothing warm): to the first rows drawn, and to all pods listed;
//  - the longest frame while scrolling the pod list for 3 s;
//  - the dashboard's files transferred (compressed) and the API bytes the pod list cost;
//  - server RSS added per open dashboard session (SESSIONS sessions on the overview, then their mean).
// Run: node --import tsx bench/dashboard.ts [NODES=1000] [PODS_PER_NODE=10] [SESSIONS=5]
// (after `npm run build`). Prints each figure and a one-line summary.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium, type Page } from 'playwright-core';
import { MANY_NODES, startBenchServer, rssMb, stopProcess, type BenchServer } from './lib/server.js';

const NODES = Number(process.argv[2] ?? 1000);
const PER_NODE = Number(process.argv[3] ?? 10);
const SESSIONS = Number(process.argv[4] ?? 5);
const PODS = NODES * PER_NODE;
const ROOT = join(import.meta.dirname, '..');

async function startHollow(server: BenchServer): Promise<ChildProcess> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const proc = spawn(join(ROOT, 'bin', 'skiff'), ['hollow', '--server', `https://127.0.0.1:${server.port}`, '--token', token,
    '--count', String(NODES), '--data-dir', join(server.dataDir, 'hollow'), '--pod-start-delay', '100',
    '--join-concurrency', '32', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('nodes ready')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow exited with ${code}`)));
  });
  return proc;
}

function adminAgent(server: BenchServer): https.Agent {
  const kc = readFileSync(server.kubeconfigPath, 'utf8');
  const b64 = (k: string) => Buffer.from(new RegExp(`${k}: (\\S+)`).exec(kc)![1]!, 'base64').toString();
  return new https.Agent({ keepAlive: true, maxSockets: 16, ca: b64('certificate-authority-data'), cert: b64('client-certificate-data'), key: b64('client-key-data') });
}

function call(server: BenchServer, agent: https.Agent, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request({ host: '127.0.0.1', port: server.port, method, path, agent,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function createPods(server: BenchServer, agent: https.Agent): Promise<void> {
  let next = 0;
  const post = async (i: number) => {
    const r = await call(server, agent, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `bench-${String(i).padStart(6, '0')}`, namespace: 'default', labels: { app: 'bench' } },
      spec: { nodeName: `hollow-${i % NODES}`, containers: [{ name: 'app', image: 'pause' }] } });
    if (r.status !== 201) throw new Error(`create pod: ${r.status} ${r.body.slice(0, 200)}`);
  };
  await Promise.all(Array.from({ length: 16 }, async () => { while (next < PODS) await post(next++); }));
}

/** Pods Running, from one paged list (so the browser is measured against a settled cluster). */
async function runningPods(server: BenchServer, agent: https.Agent): Promise<number> {
  let n = 0, cont = '';
  do {
    const r = await call(server, agent, 'GET', `/api/v1/pods?limit=5000&fieldSelector=status.phase%3DRunning${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
    const l = JSON.parse(r.body);
    n += (l.items ?? []).length;
    cont = l.metadata?.continue ?? '';
  } while (cont);
  return n;
}

/** The server's RSS as the median of five samples 2 s apart (V8's heap grows and shrinks by tens of MB). */
async function rssSettled(pid: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) { await new Promise((r) => setTimeout(r, 2000)); xs.push(rssMb(pid)); }
  return xs.sort((a, b) => a - b)[2]!;
}

const text = (sel: string) => `(document.querySelector('${sel}')?.textContent ?? '')`;
async function waitFor(page: Page, expr: string, timeout = 300_000): Promise<void> {
  await page.waitForFunction(expr, undefined, { timeout, polling: 'raf' });
}

// A /10 pod network: the default /16 has room for 256 nodes' /24s, and the allocator's retries for the
// rest would load the server during the run. Warnings only: 5,000 joins at info are a lot of log.
const server = await startBenchServer([...MANY_NODES.args, '--log-level', 'warn'], { env: MANY_NODES.env });
let hollow: ChildProcess | undefined;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const agent = adminAgent(server);
try {
  let t = performance.now();
  hollow = await startHollow(server);
  console.log(`setup: ${NODES} hollow nodes ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  await createPods(server, agent);
  const created = performance.now() - t;
  for (let i = 0; i < 600 && (await runningPods(server, agent)) < PODS; i++) await new Promise((r) => setTimeout(r, 1000));
  console.log(`setup: ${PODS} pods created in ${(created / 1000).toFixed(1)} s, all Running after ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const token = execFileSync(join(ROOT, 'bin', 'skiff'), ['dashboard', 'token', '--kubeconfig', server.kubeconfigPath, '--role', 'admin']).toString().trim();
  const rssBefore = await rssSettled(server.proc.pid!);

  // bypassCSP: the measuring snippets are strings evaluated in the page, which the dashboard's CSP forbids.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  let podListBytes = 0;
  // Each dashboard file once (a reload gets them from the browser's cache).
  const assets = new Map<string, number>();
  page.on('response', async (r) => {
    if (!r.url().includes('/dashboard/') || assets.has(r.url())) return;
    assets.set(r.url(), Number((await r.allHeaders().catch(() => ({} as Record<string, string>)))['content-length'] ?? 0));
  });
  page.on('requestfinished', async (req) => {
    if (!/\/api\/v1\/pods\?.*limit=/.test(req.url())) return;
    const sizes = await req.sizes().catch(() => undefined);
    podListBytes += sizes?.responseBodySize ?? 0;
  });
  const base = `https://127.0.0.1:${server.port}/dashboard/`;
  await page.goto(base);
  await page.fill('[data-test=token]', token);
  t = performance.now();
  await page.click('[data-test=login]');
  await waitFor(page, `${text('[data-test=nodes-total]')} === '${NODES}' && ${text('[data-test=pods-total]')} === '${PODS}'`);
  const overviewPaint = performance.now() - t;
  await waitFor(page, `${text('[data-test=pods-Running]')} === '${PODS}' && ${text('[data-test=nodes-ready]')} === '${NODES}'`);
  const overviewDone = performance.now() - t;

  // The pod list from a fresh page load (its store is not yet warm).
  await page.goto(`${base}#/pods`);
  podListBytes = 0;
  t = performance.now();
  await page.reload();
  await waitFor(page, `document.querySelectorAll('.vbody .vrow').length >= 10`);
  const podListPaint = performance.now() - t;
  await waitFor(page, `${text('[data-test=pods-info]')} === '${PODS} of ${PODS} pods'`);
  const podListDone = performance.now() - t;
  // A string, not a function: tsx would wrap a function in helpers the page does not have.
  const scroll = await page.evaluate(`(async () => {
    const el = document.querySelector('.vtable');
    let last = performance.now(), worst = 0, frames = 0;
    const end = last + 3000;
    await new Promise((resolve) => {
      const step = (now) => {
        worst = Math.max(worst, now - last);
        last = now;
        frames++;
        el.scrollTop += 400;
        if (now < end) requestAnimationFrame(step); else resolve();
      };
      requestAnimationFrame(step);
    });
    return { worst, frames, rows: el.scrollTop / 36 };
  })()`) as { worst: number; frames: number; rows: number };

  // Server memory per session: SESSIONS more sessions on the overview (each with its own watches).
  await page.goto(`${base}#/overview`);
  await waitFor(page, `${text('[data-test=pods-Running]')} === '${PODS}'`);
  const rssOne = await rssSettled(server.proc.pid!);
  const more: Page[] = [];
  for (let i = 0; i < SESSIONS - 1; i++) {
    const p = await (await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1280, height: 900 } })).newPage();
    await p.goto(base);
    await p.fill('[data-test=token]', token);
    await p.click('[data-test=login]');
    await p.waitForFunction(`${text('[data-test=pods-Running]')} === '${PODS}'`, undefined, { timeout: 300_000 });
    more.push(p);
  }
  const rssAll = await rssSettled(server.proc.pid!);
  const perSession = (rssAll - rssBefore) / SESSIONS;

  const assetBytes = [...assets.values()].reduce((a, b) => a + b, 0);
  const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`overview, totals right (first meaningful paint): ${f(overviewPaint)}; every pod counted by phase: ${f(overviewDone)}`);
  console.log(`pod list after a reload: first rows ${f(podListPaint)}; all ${PODS} pods listed ${f(podListDone)} (${(podListBytes / 1e6).toFixed(1)} MB of list responses)`);
  console.log(`scrolling the pod list for 3 s: longest frame ${scroll.worst.toFixed(1)} ms, ${scroll.frames} frames, ${Math.round(scroll.rows)} rows scrolled`);
  console.log(`dashboard files transferred (compressed): ${(assetBytes / 1024).toFixed(1)} KB`);
  console.log(`server RSS: ${rssBefore.toFixed(0)} MB before, ${rssOne.toFixed(0)} MB with one session, ${rssAll.toFixed(0)} MB with ${SESSIONS}: ${perSession.toFixed(1)} MB per session`);
  console.log(`SUMMARY nodes=${NODES} pods=${PODS} overview=${f(overviewPaint)} (complete ${f(overviewDone)}) podlist=${f(podListPaint)} (complete ${f(podListDone)}) maxframe=${scroll.worst.toFixed(0)}ms assets=${(assetBytes / 1024).toFixed(0)}KB rss/session=${perSession.toFixed(1)}MB`);
} finally {
  agent.destroy();
  await browser.close();
  await stopProcess(hollow);
  await server.stop();
}
