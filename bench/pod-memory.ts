// What a pod costs the server's memory (issue 15): one `skiff server`, N hollow nodes, then M pods as
// Deployments of 100 replicas, all Running. The server writes a V8 heap snapshot (SIGUSR2, through
// --heapsnapshot-signal, which collects garbage first) with the nodes joined and again with the pods
// Running; the difference of the snapshots' live bytes, divided by M, is the heap per pod, with
// everything a pod brings along (its versions in the watch cache's ring, its Events, informers'
// indexes, the scheduler's view). Prints both snapshots' largest categories, RSS before and after,
// and a summary line. Run after `npm run build`:
//   node --import tsx bench/pod-memory.ts [--nodes 50] [--pods 4000] [--keep-snapshots]
// --keep-snapshots leaves both snapshots in their directory (printed) for a heap viewer.
// rssPerPod overstates: the second RSS includes what writing the first snapshot took outside V8's
// heap, which the allocator keeps (1,000 nodes and 1,000 pods: RSS 279 -> 699 MB, V8's heap 109 -> 160
// MB committed). heapPerPod is the figure to compare.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources } from '../src/client/types.js';
import type { KObject } from '../src/api/object.js';
import { MANY_NODES, rssMb, scrapeMetrics, sleep, startBenchServer, stopProcess, type BenchServer } from './lib/server.js';
import { setLogLevel } from '../src/util/log.js';

interface Options { nodes: number; pods: number; keepSnapshots: boolean }

function parseArgs(argv: string[]): Options {
  const o: Options = { nodes: 50, pods: 4000, keepSnapshots: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      console.log('usage: node --import tsx bench/pod-memory.ts [--nodes 50] [--pods 4000] [--keep-snapshots]');
      process.exit(0);
    }
    if (flag === '--keep-snapshots') { o.keepSnapshots = true; continue; }
    const n = Number(argv[++i]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${argv[i]}`);
    if (flag === '--nodes') o.nodes = n;
    else if (flag === '--pods') o.pods = n;
    else throw new Error(`unknown option ${flag}`);
  }
  // A hollow node takes 110 pods.
  if (o.pods > o.nodes * 100) throw new Error(`--pods ${o.pods} needs at least ${Math.ceil(o.pods / 100)} nodes`);
  return o;
}

/** Live bytes of a heap snapshot, and the largest categories (strings, objects by constructor, code...). */
function heapOf(file: string): { bytes: number; top: [string, number][] } {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const nodes: number[] = snap.nodes;
  const by = new Map<string, number>();
  let bytes = 0;
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + iType]!]!;
    const size = nodes[i + iSize]!;
    bytes += size;
    const key = type === 'object' ? `object ${snap.strings[nodes[i + iName]!]}` : type.includes('string') ? 'strings' : type;
    by.set(key, (by.get(key) ?? 0) + size);
  }
  return { bytes, top: [...by].sort((a, b) => b[1] - a[1]).slice(0, 6) };
}

/** Asks the server for a heap snapshot; resolves with its file once written (the server answers again). */
async function snapshot(server: BenchServer, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  server.proc.kill('SIGUSR2');
  for (;;) {
    await sleep(500);
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    // Written synchronously on the server's thread: done when its size holds still for a second.
    const size = statSync(join(dir, file)).size;
    await sleep(1000);
    if (size > 0 && statSync(join(dir, file)).size === size) return join(dir, file);
  }
}

function startHollow(server: BenchServer, nodes: number): Promise<ChildProcess> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const logFd = openSync(join(server.dataDir, 'hollow.log'), 'a');
  const proc = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist', 'cli', 'main.js'), 'hollow',
    '--server', `https://127.0.0.1:${server.port}`, '--token', token, '--count', String(nodes),
    '--data-dir', join(server.dataDir, 'hollow'), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('nodes ready')) resolve(proc); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow exited with ${code} before its nodes were ready`)));
  });
}

const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

/** The server's V8 heap committed and used, and memory outside V8 it reports, from its /metrics. */
async function heapCommitted(server: BenchServer): Promise<string> {
  const metric = await scrapeMetrics(server.kubeconfigPath);
  const v = (name: string) => mb(metric(name) ?? NaN);
  return `V8 heap committed ${v('nodejs_heap_size_total_bytes')}, used ${v('nodejs_heap_size_used_bytes')}, external ${v('nodejs_external_memory_bytes')}`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  setLogLevel('warn');
  const snapDir = mkdtempSync(join(tmpdir(), 'skiff-bench-podmem-'));
  // The server writes its snapshots into its working directory: this one.
  process.chdir(snapDir);
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2`.trim();
  const server = await startBenchServer(['--log-level', 'warn', ...MANY_NODES.args], { readyTimeoutMs: 120_000, env: MANY_NODES.env });
  let hollow: ChildProcess | undefined;
  const admin = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench-pod-memory' });
  try {
    console.log(`server ready in ${(server.startMs / 1000).toFixed(1)} s; joining ${o.nodes} hollow nodes`);
    hollow = await startHollow(server, o.nodes);
    await sleep(10_000);
    const rss0 = rssMb(server.proc.pid!);
    console.log(`before the snapshot: RSS ${rss0.toFixed(0)} MB; ${await heapCommitted(server)}`);
    const heap0 = heapOf(await snapshot(server, snapDir));
    console.log(`nodes joined: server RSS ${rss0.toFixed(0)} MB, heap ${mb(heap0.bytes)} (${heap0.top.map(([k, v]) => `${k} ${mb(v)}`).join(', ')})`);

    const t0 = performance.now();
    const deployments = Math.ceil(o.pods / 100);
    for (let i = 0; i < deployments; i++) {
      const replicas = Math.min(100, o.pods - i * 100);
      await admin.create(Resources.deployments, 'default', {
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: `mem-${i}` },
        spec: { replicas, selector: { matchLabels: { app: `mem-${i}` } },
          template: { metadata: { labels: { app: `mem-${i}` } }, spec: { containers: [{ name: 'app', image: 'registry.local/pause:3.9' }] } } },
      } as KObject);
    }
    let running = 0;
    for (;;) {
      const pods = await admin.list(Resources.pods, 'default');
      running = pods.items.filter((p) => (p as KObject & { status?: { phase?: string } }).status?.phase === 'Running').length;
      if (running >= o.pods) break;
      if (performance.now() - t0 > 900_000) throw new Error(`only ${running} of ${o.pods} pods Running after 15 min`);
      await sleep(2000);
    }
    console.log(`${o.pods} pods Running in ${((performance.now() - t0) / 1000).toFixed(1)} s; settling 20 s`);
    await sleep(20_000);
    const events = (await admin.list(Resources.events, 'default')).items.length;
    const rss1 = rssMb(server.proc.pid!);
    console.log(`before the snapshot: RSS ${rss1.toFixed(0)} MB; ${await heapCommitted(server)}`);
    const heap1 = heapOf(await snapshot(server, snapDir));
    console.log(`pods Running: server RSS ${rss1.toFixed(0)} MB, heap ${mb(heap1.bytes)} (${heap1.top.map(([k, v]) => `${k} ${mb(v)}`).join(', ')}); ${events} Events`);
    const perPod = (heap1.bytes - heap0.bytes) / o.pods;
    const rssPerPod = ((rss1 - rss0) * 1e6) / o.pods;
    console.log(`pod-memory: nodes=${o.nodes} pods=${o.pods} heapPerPod=${(perPod / 1024).toFixed(1)}KB rssPerPod=${(rssPerPod / 1024).toFixed(1)}KB `
      + `heapNodes=${mb(heap0.bytes)} heapPods=${mb(heap1.bytes)} rssNodes=${rss0.toFixed(0)}MB rssPods=${rss1.toFixed(0)}MB events=${events}`);
  } finally {
    admin.close();
    await stopProcess(hollow);
    await server.stop();
    if (o.keepSnapshots) console.log(`snapshots kept in ${snapDir}`);
    else rmSync(snapDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
