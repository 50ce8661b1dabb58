// Service proxy programming (issue 9's benchmark, proxy half): a server in this namespace and one real
// `skiff agent` in a network namespace of its own (its nftables table is the namespace's), then:
//  1. 1,000 Services × 10 endpoints created through the API (Services without selector plus one
//     EndpointSlice of 10 endpoints each, so no pods are needed): time from the first create to all
//     1,000 in the kernel's `service-ips` map pointing at their chains, and from the last API write
//     acknowledged to the kernel (the proxy's own lag);
//  2. one endpoint change (an EndpointSlice PATCH replacing one address) → the new DNAT rule in the
//     kernel, repeated, p50/p99;
//  3. the agent restarted with the table in place (a diff of nothing) and with the table deleted
//     (all 1,000 Services written in one transaction): the reconcile figures the agent logs;
//  4. the agent's RSS with 1,000 Services.
// Needs root, nft, containerd, runc, the CNI bridge plugin and /bin/busybox. Run after `npm run build`:
//   node --import tsx bench/net-proxy.ts [--services 1000] [--endpoints 10] [--changes 20]
// (BENCH_AGENT_ARGS="--log-level debug" adds agent flags; BENCH_KEEP=1 keeps the agent's log in /tmp.)
// Everything it starts is torn down, even on failure or Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources } from '../src/client/types.js';
import { teardownRuntime } from '../src/agent/runtime/teardown.js';
import { writeBusyboxImage } from '../test/helpers/images.js';
import { createHost, removeHost, sh, startHostAgent } from './lib/netns-host.js';
import { startBenchServer, rssMb, sleep, stopProcess, type BenchServer } from './lib/server.js';
import { percentile } from './lib/stats.js';
import { endpointChain } from '../src/agent/network/proxy/nft-rules.js';
import type { Endpoint, ServicePortModel } from '../src/agent/network/proxy/model.js';

const NS = 'bench';
const NODE = 'proxy-bench';
const GOALS = { programMs: 1000, changeMs: 100, rssMb: 70 };
const run = process.pid % 1000;
const host = { netns: `skpxb${run}`, hostIf: `skpxb${run}`, hostIp: '10.198.1.1', ip: '10.198.1.2' };

interface Options { services: number; endpoints: number; changes: number }

function options(argv: string[]): Options {
  const o: Options = { services: 1000, endpoints: 10, changes: 20 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], Number(argv[i + 1])];
    if (flag === '--services' && v > 0 && v <= 60000) o.services = v;
    else if (flag === '--endpoints' && v > 0 && v <= 250) o.endpoints = v;
    else if (flag === '--changes' && v > 0) o.changes = v;
    else throw new Error(`unknown or invalid option ${flag} ${argv[i + 1] ?? ''}`);
  }
  return o;
}

const nft = (...args: string[]) => sh(['nsenter', `--net=/var/run/netns/${host.netns}`, 'nft', ...args]);

const startAgent = (server: BenchServer, dir: string, token: string): ChildProcess => startHostAgent(host, server, dir, token, NODE);

/** Bench Services whose `service-ips` element points at their chain (they have endpoints in the kernel). */
function programmedCount(): number {
  const r = nft('list', 'map', 'ip', 'skiff-proxy', 'service-ips');
  return r.status === 0 ? (r.stdout.match(/goto service-[0-9A-F]{8}-bench\//g) ?? []).length : 0;
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await fn()) return performance.now();
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

const ipOf = (svc: number, ep: number) => `10.${100 + (svc >> 8)}.${svc & 255}.${ep + 1}`;

/** `nft monitor` in the node's namespace: resolves when a chain of the given name is committed. */
function chainMonitor(): { ready(): Promise<void>; next(chain: string): Promise<number>; stop(): void } {
  // stdbuf: nft's stdout to a pipe is block-buffered, which would hold events back by kilobytes
  const p = spawn('nsenter', [`--net=/var/run/netns/${host.netns}`, 'stdbuf', '-oL', 'nft', 'monitor', 'chains'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const waiting = new Map<string, (t: number) => void>();
  let partial = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (chunk: string) => {
    const t = performance.now();
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /^add chain ip skiff-(?:proxy|bench-sync) (\S+)/.exec(line);
      const resolve = m && waiting.get(m[1]!);
      if (resolve) { waiting.delete(m![1]!); resolve(t); }
    }
  });
  return {
    next: (chain) => new Promise<number>((resolve, reject) => {
      waiting.set(chain, resolve);
      setTimeout(() => { if (waiting.delete(chain)) reject(new Error(`chain ${chain} not committed within 30 s`)); }, 30_000).unref();
    }),
    stop: () => { p.kill(); nft('delete', 'table', 'ip', 'skiff-bench-sync'); },
    // The monitor subscribes some time after it starts (longer on a loaded machine): until a chain of
    // the bench's own shows up, an event could be missed.
    ready: async () => {
      for (let i = 0; ; i++) {
        const seen = new Promise<number>((resolve) => waiting.set(`sync-${i}`, resolve));
        nft('add', 'table', 'ip', 'skiff-bench-sync');
        nft('add', 'chain', 'ip', 'skiff-bench-sync', `sync-${i}`);
        if (await Promise.race([seen.then(() => true), sleep(1000).then(() => false)])) return;
        waiting.delete(`sync-${i}`);
        if (i > 60) throw new Error('nft monitor never reported a chain');
      }
    },
  };
}

function lastReconcile(dir: string): Record<string, number> {
  const line = readFileSync(join(dir, 'agent.log'), 'utf8').split('\n').filter((l) => l.includes('service proxy table reconciled')).at(-1);
  return line ? JSON.parse(line) : {};
}

async function forEachConcurrent(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
    for (let i = next++; i < n; i = next++) await fn(i);
  }));
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespace, nftables, containerd)');
  let server: BenchServer | undefined;
  let agent: ChildProcess | undefined;
  let client: HttpClient | undefined;
  const dir = mkdtempSync('/tmp/skiff-pxb-');
  const cleanup = async () => {
    await stopProcess(agent);
    client?.close();
    if (process.env.BENCH_KEEP) spawnSync('cp', [join(dir, 'agent.log'), `/tmp/net-proxy-agent-${process.pid}.log`]);
    await teardownRuntime({ dataDir: dir, removeDataDir: true }).catch(() => undefined);
    removeHost(host);
    await server?.stop();
  };
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  try {
    createHost(host);
    mkdirSync(join(dir, 'agent', 'images'), { recursive: true });
    writeBusyboxImage(join(dir, 'agent', 'images'), 'busybox.tar');
    server = await startBenchServer(['--bind-address', '0.0.0.0', '--tls-san', host.hostIp]);
    const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
    client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench', maxConnections: 16 });
    agent = startAgent(server, dir, token);
    await waitFor('the agent\'s service proxy', () => nft('list', 'map', 'ip', 'skiff-proxy', 'service-ips').status === 0, 120_000, 200);
    await client.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await sleep(3000);
    const rssIdle = rssMb(agent.pid!);

    // 1. 1,000 Services × 10 endpoints: API create → all in the kernel.
    const t0 = performance.now();
    let lastAck = 0;
    await forEachConcurrent(o.services, 16, async (i) => {
      await client!.create(Resources.services, NS, {
        apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}`, namespace: NS }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
      });
      await client!.create(Resources.endpointSlices, NS, {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
        metadata: { name: `svc-${i}-1`, namespace: NS, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
        addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: Array.from({ length: o.endpoints }, (_, e) => ({ addresses: [ipOf(i, e)], conditions: { ready: true } })),
      });
      lastAck = performance.now();
    });
    const created = performance.now();
    const done = await waitFor('all Services in the kernel', () => programmedCount() >= o.services, 300_000, 50);
    const programMs = done - t0;
    const lagMs = done - lastAck;
    const apiMs = created - t0;
    await sleep(3000);
    const rss = rssMb(agent.pid!);

    // 2. One endpoint change at a time: PATCH → the new DNAT rule in the kernel. The moment of the
    // commit comes from `nft monitor` (an event per committed chain): polling with `nft list` would
    // load the 11,000-chain cache on every poll and compete with the agent for the CPU it measures.
    const monitor = chainMonitor();
    await monitor.ready();
    const changes: number[] = [];
    for (let c = 0; c < o.changes; c++) {
      const svc = (c * 37) % o.services;
      const newIp = `10.99.${c >> 8}.${(c & 255) + 1}`;
      const eps = Array.from({ length: o.endpoints }, (_, e) => ({ addresses: [e === 0 ? newIp : ipOf(svc, e)], conditions: { ready: true } }));
      const chain = endpointChainName(svc, newIp);
      const committed = monitor.next(chain);
      const t = performance.now();
      await client.patch(Resources.endpointSlices, NS, `svc-${svc}-1`, 'merge', { endpoints: eps });
      changes.push(await committed - t);
    }
    monitor.stop();
    changes.sort((a, b) => a - b);

    // 3. Restart with the table in place (nothing to write), then with no table (everything at once).
    await stopProcess(agent);
    agent = startAgent(server, dir, token);
    await waitFor('the restarted agent\'s reconcile', () => countReconciles(dir) >= 2, 120_000, 200);
    const warm = lastReconcile(dir);
    await stopProcess(agent);
    nft('delete', 'table', 'ip', 'skiff-proxy');
    agent = startAgent(server, dir, token);
    await waitFor('the cold reconcile', () => countReconciles(dir) >= 3, 120_000, 200);
    const cold = lastReconcile(dir);

    const p = (q: number) => percentile(changes, q).toFixed(1);
    console.log(`service proxy programming (real agent in a network namespace, nftables ${sh(['nft', '--version']).stdout.trim()})`);
    console.log(`  ${o.services} Services × ${o.endpoints} endpoints: API writes ${Math.round(apiMs)} ms (${o.services * 2} objects); first create → all in the kernel ${Math.round(programMs)} ms; last API write → all in the kernel ${Math.round(lagMs)} ms`);
    console.log(`  endpoint change (PATCH → DNAT rule in the kernel), ${o.changes} changes: p50 ${p(50)} ms, p99 ${p(99)} ms, max ${changes.at(-1)!.toFixed(1)} ms`);
    console.log(`  agent restart, table in place: read back in ${warm.readMs} ms, reconcile wrote ${warm.chainsWritten} chains, ${warm.elementsAdded} elements (total ${warm.totalMs} ms)`);
    console.log(`  agent restart, no table: ${cold.chains} chains, ${cold.elements} elements written in one transaction of ${cold.ms} ms`);
    console.log(`  agent RSS: ${rssIdle.toFixed(1)} MB without Services, ${rss.toFixed(1)} MB with ${o.services}`);
    const pass = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(`summary: ${o.services}×${o.endpoints} programmed ${Math.round(lagMs)} ms after the last write (one transaction: ${cold.ms} ms; goal < ${GOALS.programMs} ms: ${pass(cold.ms < GOALS.programMs)}); endpoint change p50 ${p(50)} / p99 ${p(99)} ms (goal < ${GOALS.changeMs} ms: ${pass(percentile(changes, 99) < GOALS.changeMs)}); agent RSS ${rss.toFixed(0)} MB (goal < ${GOALS.rssMb}: ${pass(rss < GOALS.rssMb)})`);
  } finally {
    await cleanup();
  }
}

function countReconciles(dir: string): number {
  return readFileSync(join(dir, 'agent.log'), 'utf8').split('\n').filter((l) => l.includes('service proxy table reconciled')).length;
}

/** The endpoint chain the proxy gives `ip` of bench Service `svc` (nft-rules.ts names it). */
function endpointChainName(svc: number, ip: string): string {
  return endpointChain({ name: `${NS}/svc-${svc}/tcp/http` } as ServicePortModel, { ip, port: 8080 } as Endpoint);
}

main().catch((err) => { console.error(err instanceof Error ? err.stack : err); process.exit(1); });
