// Agent memory against the cluster's node count (issue 15): what an agent holds of other Nodes for
// its overlay, with 10 nodes and then with N (default 1000) hollow nodes, each Node carrying flannel
// annotations as a real agent's does. Two watcher processes follow the Nodes: `view` is the agent's
// code path (an informer with the peer-view transform, src/agent/network/pod-network.ts), `full`
// keeps whole Node objects (the agent before issue 15). Each reports its heap after a full GC and its
// RSS. Run after `npm run build`:
//   node --import tsx bench/agent-nodes.ts [--nodes 1000]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { HttpClient } from '../src/client/http.js';
import { Informer } from '../src/client/informer.js';
import { Resources } from '../src/client/types.js';
import type { KObject } from '../src/api/object.js';
import { ANNOTATIONS, peerView } from '../src/agent/network/backends/backend.js';
import { setLogLevel } from '../src/util/log.js';
import { MANY_NODES, startBenchServer, stopProcess, sleep } from './lib/server.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

interface Sample { nodes: number; heapMb: number; rssMb: number }

/** Child: follows Nodes; on each stdin line "measure", prints a Sample after a full GC. */
async function child(kubeconfig: string, mode: 'view' | 'full'): Promise<void> {
  setLogLevel('error');
  const client = HttpClient.fromKubeconfig(kubeconfig, { userAgent: `agent-nodes-${mode}` });
  const nodes = new Informer<KObject>({ client, resource: Resources.nodes, ...(mode === 'view' ? { transform: peerView } : {}) });
  nodes.addHandlers({ onUpdate: () => {} });
  nodes.start();
  await nodes.waitForSync();
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'measure') continue;
    for (let i = 0; i < 3; i++) { (globalThis as { gc?: () => void }).gc?.(); await sleep(50); }
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ nodes: nodes.keys().length, heapMb: m.heapUsed / 2 ** 20, rssMb: m.rss / 2 ** 20 })}\n`);
  }
  await nodes.stop();
  client.close();
}

class Watcher {
  readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private waiting?: () => void;
  constructor(kubeconfig: string, readonly mode: 'view' | 'full') {
    this.proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SELF, '--child', kubeconfig, mode], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => { this.lines.push(l); this.waiting?.(); });
  }

  async measure(): Promise<Sample> {
    this.proc.stdin!.write('measure\n');
    while (this.lines.length === 0) await new Promise<void>((r) => { this.waiting = r; });
    return JSON.parse(this.lines.shift()!) as Sample;
  }

  /** Measures until the watcher holds `n` nodes. */
  async measureAt(n: number): Promise<Sample> {
    for (;;) {
      const s = await this.measure();
      if (s.nodes >= n) return s;
      await sleep(500);
    }
  }
}

/** Hollow nodes per `skiff hollow` process. */
const PER_HOLLOW = 1000;

async function hollow(server: { dataDir: string; port: number }, first: number, count: number): Promise<ChildProcess> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const fd = openSync(join(server.dataDir, `hollow-${first}.log`), 'a');
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'hollow', '--server', `https://127.0.0.1:${server.port}`, '--token', token,
    '--count', String(count), '--first-index', String(first), '--data-dir', join(server.dataDir, 'hollow'), '--join-concurrency', '16', '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('nodes ready')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow exited with ${code}`)));
  });
  return proc;
}

/** Flannel's annotations on every node from `first`, as a vxlan agent publishes them. */
async function annotate(admin: HttpClient, first: number, count: number): Promise<void> {
  let next = first;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < first + count; i = next++) {
      const mac = `02:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255, 1].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      await admin.patch(Resources.nodes, undefined, `hollow-${i}`, 'merge', { metadata: { annotations: {
        [ANNOTATIONS.backendType]: 'vxlan', [ANNOTATIONS.backendData]: JSON.stringify({ VNI: 1, VtepMAC: mac }),
        [ANNOTATIONS.publicIp]: `172.16.${(i + 1) >> 8}.${(i + 1) & 255}`, [ANNOTATIONS.subnetManager]: 'true',
      } } });
    }
  }));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1]!, argv[2] as 'view' | 'full');
  const i = argv.indexOf('--nodes');
  const total = i >= 0 ? Number(argv[i + 1]) : 1000;
  setLogLevel('error');
  const server = await startBenchServer([...MANY_NODES.args], { env: MANY_NODES.env });
  const procs: ChildProcess[] = [];
  const watchers: Watcher[] = [];
  try {
    const admin = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'agent-nodes' });
    procs.push(await hollow(server, 0, 10));
    await annotate(admin, 0, 10);
    watchers.push(new Watcher(server.kubeconfigPath, 'view'), new Watcher(server.kubeconfigPath, 'full'));
    const at10 = await Promise.all(watchers.map((w) => w.measureAt(10)));
    console.log(`10 nodes: measured; joining ${total - 10} more`);
    // At most PER_HOLLOW nodes per hollow process, started together (one process for thousands of
    // nodes would spend minutes joining them one TLS handshake after another).
    const t = performance.now();
    const chunks: Promise<ChildProcess>[] = [];
    for (let first = 10; first < total; first += PER_HOLLOW) chunks.push(hollow(server, first, Math.min(PER_HOLLOW, total - first)));
    // Settled, not raced: the processes that did start are stopped in `finally` even if another failed.
    const started = await Promise.allSettled(chunks);
    for (const r of started) if (r.status === 'fulfilled') procs.push(r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    console.log(`${total} nodes ready in ${((performance.now() - t) / 1000).toFixed(0)} s; annotating`);
    await annotate(admin, 10, total - 10);
    await sleep(2000);   // the last annotations reach the watchers
    const atN = await Promise.all(watchers.map((w) => w.measureAt(total)));
    admin.close();
    const fmt = (s: Sample) => `heap ${s.heapMb.toFixed(1)} MB, RSS ${s.rssMb.toFixed(0)} MB`;
    for (const [k, w] of watchers.entries()) {
      console.log(`${w.mode.padEnd(4)}: 10 nodes ${fmt(at10[k]!)}; ${total} nodes ${fmt(atN[k]!)}; growth heap ${(atN[k]!.heapMb - at10[k]!.heapMb).toFixed(1)} MB, `
        + `RSS ${(atN[k]!.rssMb - at10[k]!.rssMb).toFixed(0)} MB`);
    }
    console.log(`agent-nodes: nodes=10→${total} viewHeapGrowth=${(atN[0]!.heapMb - at10[0]!.heapMb).toFixed(1)}MB viewRssGrowth=${(atN[0]!.rssMb - at10[0]!.rssMb).toFixed(0)}MB `
      + `fullHeapGrowth=${(atN[1]!.heapMb - at10[1]!.heapMb).toFixed(1)}MB fullRssGrowth=${(atN[1]!.rssMb - at10[1]!.rssMb).toFixed(0)}MB`);
  } finally {
    for (const w of watchers) w.proc.kill('SIGTERM');
    await Promise.all(procs.map((p) => stopProcess(p)));
    await server.stop();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
