// Dashboard benchmark (issue 16), in the real browser (Debian chromium via playwright-core): a server,
// `skiff hollow --count NODES`, PODS pods bound round-robin to the hollow nodes, then the time from
// navigation to the overview showing every node and pod, the time to the pod list showing them all,
// the longest frame while scrolling that list, the bytes of the dashboard's files, and the server's
// RSS before and with the dashboard open. Run: node --import tsx bench/dashboard.ts [NODES] [PODS]
// (after `npm run build`; defaults 100 nodes, 5,000 pods).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';
import { startBenchServer, rssMb, stopProcess, type BenchServer } from './lib/server.js';

const NODES = Number(process.argv[2] ?? 100);
const PODS = Number(process.argv[3] ?? 5000);
const ROOT = join(import.meta.dirname, '..');

async function startHollow(server: BenchServer): Promise<ChildProcess> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const proc = spawn(join(ROOT, 'bin', 'skiff'), ['hollow', '--server', `https://127.0.0.1:${server.port}`, '--token', token,
    '--count', String(NODES), '--data-dir', join(server.dataDir, 'hollow'), '--pod-start-delay', '100',
    '--join-concurrency', '8', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('nodes ready')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow exited with ${code}`)));
  });
  return proc;
}

async function createPods(server: BenchServer): Promise<void> {
  const kc = readFileSync(server.kubeconfigPath, 'utf8');
  const b64 = (k: string) => Buffer.from(new RegExp(`${k}: (\\S+)`).exec(kc)![1]!, 'base64').toString();
  const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: b64('certificate-authority-data'), cert: b64('client-certificate-data'), key: b64('client-key-data') });
  let next = 0;
  const post = (i: number) => new Promise<void>((resolve, reject) => {
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${i}`, namespace: 'default' },
      spec: { nodeName: `hollow-${i % NODES}`, containers: [{ name: 'app', image: 'pause' }] } });
    const req = https.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/api/v1/namespaces/default/pods', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume().on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`create pod: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  await Promise.all(Array.from({ length: 16 }, async () => { while (next < PODS) await post(next++); }));
  agent.destroy();
}

const server = await startBenchServer();
let hollow: ChildProcess | undefined;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  hollow = await startHollow(server);
  let t = performance.now();
  await createPods(server);
  console.log(`setup: ${NODES} nodes, ${PODS} pods created in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const token = execFileSync(join(ROOT, 'bin', 'skiff'), ['dashboard', 'token', '--kubeconfig', server.kubeconfigPath, '--role', 'admin']).toString().trim();
  const rssBefore = rssMb(server.proc.pid!);
  // bypassCSP: the measuring snippets are strings evaluated in the page, which the dashboard's CSP forbids.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  let assetBytes = 0;
  page.on('response', async (r) => { if (r.url().includes('/dashboard/')) assetBytes += Number((await r.allHeaders())['content-length'] ?? 0); });
  const base = `https://127.0.0.1:${server.port}/dashboard/`;
  await page.goto(base);
  await page.fill('[data-test=token]', token);
  t = performance.now();
  await page.click('[data-test=login]');
  await page.waitForFunction(`document.querySelector('[data-test=nodes-total]')?.textContent === '${NODES}'
    && document.querySelector('[data-test=pods-total]')?.textContent === '${PODS}'`, undefined, { timeout: 120_000, polling: 50 });
  const overviewMs = performance.now() - t;
  // The pod list from a fresh page load (its store is not yet warm).
  await page.goto(`${base}#/pods`);
  t = performance.now();
  await page.reload();
  await page.waitForFunction(`document.querySelector('.page .muted')?.textContent === '${PODS} of ${PODS} pods'`, undefined, { timeout: 120_000, polling: 50 });
  const podListMs = performance.now() - t;
  // A string, not a function: tsx would wrap a function in helpers the page does not have.
  const maxFrame = await page.evaluate(`(async () => {
    const el = document.querySelector('.vtable');
    let last = performance.now(), worst = 0;
    const end = last + 3000;
    await new Promise((resolve) => {
      const step = (now) => {
        worst = Math.max(worst, now - last);
        last = now;
        el.scrollTop += 400;
        if (now < end) requestAnimationFrame(step); else resolve();
      };
      requestAnimationFrame(step);
    });
    return worst;
  })()`) as number;
  const rssOpen = rssMb(server.proc.pid!);
  console.log(`overview complete (${NODES} nodes, ${PODS} pods): ${overviewMs.toFixed(0)} ms`);
  console.log(`pod list complete after a reload: ${podListMs.toFixed(0)} ms`);
  console.log(`longest frame while scrolling the pod list: ${maxFrame.toFixed(1)} ms`);
  console.log(`dashboard files transferred (compressed): ${assetBytes} bytes`);
  console.log(`server RSS: ${rssBefore.toFixed(0)} MB before, ${rssOpen.toFixed(0)} MB with the dashboard open`);
} finally {
  await browser.close();
  await stopProcess(hollow);
  await server.stop();
}
