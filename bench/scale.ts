// Scale benchmark (issue 15): one `skiff server`, N hollow nodes spread over several `skiff hollow`
// processes, M pods as one DaemonSet, Jobs and Deployments created in one burst; then a steady phase
// creating and deleting bare pods at a fixed rate while every node heartbeats; then `kill -9` of the
// server and a restart on the same data dir. Prints, per phase: scheduling throughput, create→Running
// p50/p99 (burst: first seen → Running; steady: create request sent → Running), API mutating and read
// p99, watch lag (a write sent → its event seen by a watch), server RSS and CPU, datastore size, Lease
// renewals that missed their deadline (no renewal seen for a lease duration), nodes that turned
// NotReady, and the recovery after kill -9 (answering, every node renewed its Lease and Ready, no pod
// evicted or recreated). Run after `npm run build`:
//   node --import tsx bench/scale.ts [--nodes 5000] [--pods 50000] [--rate 100] [--steady-seconds 180]
//     [--nodes-per-hollow 1000] [--pod-start-delay 0] [--pod-lifetime 10] [--settle-seconds 45]
//     [--timeout 600] [--server-arg <arg>]... [--no-restart] [--restart-cpu-prof <dir>]
//     [--restart-node-arg <node flag>]... [--server-node-arg <node flag>]... [--server-cpu-prof <dir>] [--hollow-cpu-prof <dir>] [--keep-data]
//     [--from-data <dir>]
// `--from-data` starts from a copy of a data dir kept by `--keep-data` (same --nodes): no burst, the
// steady phase only if asked; for measuring the restart again without building the workload again.
// "Answering" after the restart is the first `/readyz` answered to a client as patient as kubectl
// (30 s to connect, 10 s for the TLS handshake, then no deadline); "listening" is the first TCP
// connection the kernel took.
// All figures come from this process's watches and clocks (server and nodes share the machine).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Informer } from '../src/client/informer.js';
import { isAlreadyExists, Resources, type ResourceRef } from '../src/client/types.js';
import type { KObject } from '../src/api/object.js';
import { cpuSeconds, freePort, MANY_NODES, readyz, readyzPatient, rssMb, scrapeMetrics, scrapeMetricSeries, sleep, stopProcess } from './lib/server.js';
import { percentile } from './lib/stats.js';
import { setLogLevel } from '../src/util/log.js';

type Obj = KObject & { spec?: any; status?: any };
type Phase = 'setup' | 'burst' | 'steady' | 'restart' | 'settle';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NS = 'bench';
const LEASE_DURATION_MS = 40_000;
const EXIT_AFTER = 'hollow.skiff.io/exit-after-ms';
const DEFAULT_CLI = join(ROOT, 'dist', 'cli', 'main.js');

interface Options {
  nodes: number; pods: number; rate: number; steadySeconds: number; nodesPerHollow: number; podStartDelay: number;
  podLifetimeS: number; settleS: number; timeoutS: number; serverArgs: string[]; restart: boolean; cli: string;
  /** node flags for the restarted server (e.g. --cpu-prof, --perf-basic-prof): it then runs node directly. */
  restartNodeArgs: string[];
  /** node flags for the first server (a profile of the burst and steady phases). */
  serverNodeArgs: string[];
  /** Leave the data dir (server and hollow logs, datastore) for a look afterwards. */
  keepData: boolean;
  /** A directory for V8 CPU profiles of the hollow processes (written when they stop). */
  hollowCpuProf?: string;
  /** A data dir kept by an earlier run (--keep-data), copied and started from. */
  fromData?: string;
}

function options(argv: string[]): Options {
  const o: Options = {
    nodes: 5000, pods: 50_000, rate: 100, steadySeconds: 180, nodesPerHollow: 1000, podStartDelay: 0, podLifetimeS: 10,
    settleS: 45, timeoutS: 600, serverArgs: [], restart: true, cli: DEFAULT_CLI, keepData: false, restartNodeArgs: [], serverNodeArgs: [],
  };
  const num = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${flag}: expected a number ≥ ${min}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      // The usage is this file's opening comment.
      const head = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
      console.log(head.slice(0, head.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    }
    if (flag === '--no-restart') { o.restart = false; continue; }
    if (flag === '--keep-data') { o.keepData = true; continue; }
    const v = argv[++i];
    if (flag === '--nodes') o.nodes = num(flag, v, 1);
    else if (flag === '--pods') o.pods = num(flag, v, 0);
    else if (flag === '--rate') o.rate = num(flag, v, 0);
    else if (flag === '--steady-seconds') o.steadySeconds = num(flag, v, 0);
    else if (flag === '--nodes-per-hollow') o.nodesPerHollow = num(flag, v, 1);
    else if (flag === '--pod-start-delay') o.podStartDelay = num(flag, v, 0);
    else if (flag === '--pod-lifetime') o.podLifetimeS = num(flag, v, 0);
    else if (flag === '--settle-seconds') o.settleS = num(flag, v, 0);
    else if (flag === '--timeout') o.timeoutS = num(flag, v, 1);
    else if (flag === '--server-arg' && v !== undefined) o.serverArgs.push(v);
    else if (flag === '--cli' && v !== undefined) o.cli = v;
    else if (flag === '--restart-cpu-prof' && v !== undefined) o.restartNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${v}`);
    else if (flag === '--restart-node-arg' && v !== undefined) o.restartNodeArgs.push(v);
    else if (flag === '--server-cpu-prof' && v !== undefined) o.serverNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${v}`);
    else if (flag === '--server-node-arg' && v !== undefined) o.serverNodeArgs.push(v);
    else if (flag === '--hollow-cpu-prof' && v !== undefined) o.hollowCpuProf = v;
    else if (flag === '--from-data' && v !== undefined) o.fromData = v;
    else throw new Error(`unknown or invalid option ${flag} ${v ?? ''}`);
  }
  return o;
}

// ---- processes ----------------------------------------------------------------------------------------

class Server {
  proc!: ChildProcess;
  readonly kubeconfigPath: string;
  readonly logPath: string;
  private constructor(private readonly o: Options, readonly dataDir: string, readonly port: number) {
    this.kubeconfigPath = join(dataDir, 'kubeconfig.yaml');
    this.logPath = join(dataDir, 'server.log');
  }

  static async start(o: Options): Promise<Server> {
    if (!existsSync(o.cli)) throw new Error(`${o.cli} does not exist: run \`npm run build\` first`);
    if (o.fromData && !existsSync(join(o.fromData, 'server', 'db'))) throw new Error(`--from-data ${o.fromData}: no server/db in it (a dir kept by --keep-data?)`);
    const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-scale-'));
    const s = new Server(o, dir, await freePort());
    try {
      if (o.fromData) {
        const t = performance.now();
        cpSync(o.fromData, dir, { recursive: true });
        console.log(`copied ${o.fromData} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      }
      await s.launch();
    } catch (err) {
      if (s.proc) await stopProcess(s.proc);
      if (o.keepData) console.log(`data dir kept: ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return s;
  }

  /** Spawns the server (again, on the same data dir and port); resolves when /readyz answers 200. */
  async launch(): Promise<number> {
    const t0 = this.spawn(false);
    for (;;) {
      this.checkRunning(t0);
      if (await readyz(this.port) && existsSync(this.kubeconfigPath)) return performance.now() - t0;
      await sleep(20);
    }
  }

  /**
   * Spawns the server again on the same data dir and port, after a kill; resolves when a client as
   * patient as kubectl has its `/readyz` answered (see readyzPatient), with when the kernel first
   * took a connection.
   */
  async relaunch(): Promise<{ answerMs: number; listenMs: number }> {
    const t0 = this.spawn(true);
    let listenMs = NaN;
    for (;;) {
      this.checkRunning(t0);
      const r = await readyzPatient(this.port);
      if (r.connectedAt !== undefined && Number.isNaN(listenMs)) listenMs = r.connectedAt - t0;
      if (r.ok && existsSync(this.kubeconfigPath)) return { answerMs: performance.now() - t0, listenMs };
      if (r.connectedAt === undefined) await sleep(20);
    }
  }

  private checkRunning(t0: number): void {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`skiff server exited:\n${this.logTail()}`);
    if (performance.now() - t0 > 120_000) throw new Error(`skiff server not ready after 120 s:\n${this.logTail()}`);
  }

  private spawn(restarting: boolean): number {
    // node refuses --cpu-prof in NODE_OPTIONS: a profiled server runs node itself (default profile's flags: none;
    // nor the launcher's malloc setting: give MALLOC_MMAP_THRESHOLD_=65536 to compare with a launched server).
    const nodeArgs = restarting ? this.o.restartNodeArgs : this.o.serverNodeArgs;
    const prof = nodeArgs.length ? [...nodeArgs, DEFAULT_CLI] : undefined;
    const fd = openSync(this.logPath, 'a');
    const t0 = performance.now();
    // Through the launcher unless another CLI entry was given: it passes the profile's V8 flags.
    const [cmd, entry] = prof ? [process.execPath, prof] : this.o.cli === DEFAULT_CLI ? [join(ROOT, 'bin', 'skiff'), []] : [process.execPath, [this.o.cli]];
    this.proc = spawn(cmd, [...entry, 'server', '--data-dir', this.dataDir, '--https-listen-port', String(this.port),
      '--bind-address', '127.0.0.1', '--write-kubeconfig', this.kubeconfigPath, '--disable-agent', '--log-level', 'warn',
      ...MANY_NODES.args, ...this.o.serverArgs],
    { stdio: ['ignore', fd, fd], env: { ...process.env, ...MANY_NODES.env } });
    closeSync(fd);
    return t0;
  }

  async kill9(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }

  logTail(): string {
    try { return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-20).join('\n'); } catch { return '(no log)'; }
  }

  /** Bytes of the SQLite datastore (database, WAL and shared-memory files). */
  datastoreBytes(): number {
    const dir = join(this.dataDir, 'server', 'db');
    let n = 0;
    for (const f of readdirSync(dir)) if (f.startsWith('state.db')) n += statSync(join(dir, f)).size;
    return n;
  }

  async stop(): Promise<void> {
    await stopProcess(this.proc);
    if (this.o.keepData) console.log(`data dir kept: ${this.dataDir}`);
    else rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** `skiff hollow` for nodes [first, first+count); resolves once it reports them ready. */
async function startHollow(o: Options, server: Server, first: number, count: number): Promise<ChildProcess> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const logFd = openSync(join(server.dataDir, `hollow-${first}.log`), 'a');
  const prof = o.hollowCpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.hollowCpuProf}`] : [];
  const proc = spawn(process.execPath, [...prof, o.cli, 'hollow', '--server', `https://127.0.0.1:${server.port}`, '--token', token,
    '--count', String(count), '--first-index', String(first), '--data-dir', join(server.dataDir, 'hollow'),
    '--pod-start-delay', String(o.podStartDelay), '--join-concurrency', '16', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('nodes ready')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow (nodes from ${first}) exited with ${code} before its nodes were ready`)));
  });
  return proc;
}

// ---- workloads ----------------------------------------------------------------------------------------

const container = { name: 'app', image: 'registry.local/pause:3.9', resources: { requests: { cpu: '10m', memory: '16Mi' } } };

function template(labels: Record<string, string>, extra: Record<string, unknown> = {}, annotations?: Record<string, string>) {
  return { metadata: { labels, ...(annotations ? { annotations } : {}) }, spec: { containers: [container], ...extra } };
}

/** `total` split into chunks of at most `chunk`. */
function chunks(total: number, chunk: number): number[] {
  const out: number[] = [];
  for (let left = total; left > 0; left -= chunk) out.push(Math.min(chunk, left));
  return out;
}

interface Workloads { daemonSets: Obj[]; jobs: Obj[]; deployments: Obj[] }

/**
 * M pods: one DaemonSet (a pod on every node) when M allows, a tenth as Jobs of up to 100 pods that
 * run 30 s and succeed, the rest as Deployments of up to 100 replicas.
 */
function workloads(o: Options): Workloads {
  const ds = o.pods >= 2 * o.nodes ? o.nodes : 0;
  const jobPods = Math.floor((o.pods - ds) / 10);
  const deployPods = o.pods - ds - jobPods;
  const daemonSets: Obj[] = ds ? [{
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'bench-ds', namespace: NS },
    spec: { selector: { matchLabels: { app: 'bench-ds' } }, template: template({ app: 'bench-ds' }) },
  }] : [];
  const jobs = chunks(jobPods, 100).map((n, i): Obj => ({
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: `bench-job-${i}`, namespace: NS },
    spec: { completions: n, parallelism: n, backoffLimit: 0, template: template({ app: `bench-job-${i}` }, { restartPolicy: 'Never' }, { [EXIT_AFTER]: '30000' }) },
  }));
  const deployments = chunks(deployPods, 100).map((n, i): Obj => ({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: `bench-${i}`, namespace: NS },
    spec: { replicas: n, selector: { matchLabels: { app: `bench-${i}` } }, template: template({ app: `bench-${i}` }) },
  }));
  return { daemonSets, jobs, deployments };
}

/**
 * Creates one workload object, asking again when an attempt gets no answer (30 s) or a 429/5xx: an
 * overloaded server must slow the burst down, not end the benchmark. An AlreadyExists answer means
 * an earlier attempt went through. Attempts are counted for the report.
 */
let createRetries = 0;
async function createWithRetry(client: HttpClient, ref: ResourceRef, ns: string, body: Obj): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.create(ref, ns, body as KObject);
      return;
    } catch (err) {
      if (isAlreadyExists(err)) return;
      const code = (err as { code?: number }).code;
      const transient = code === undefined || code === 429 || code >= 500;
      if (!transient || attempt >= 10) throw err;
      createRetries++;
      console.log(`  create ${body.metadata.name}: ${err instanceof Error ? err.message : String(err)}; asking again (${attempt})`);
      await sleep(1000);
    }
  }
}

async function forEachConcurrent<T>(items: T[], concurrency: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(items.length, concurrency) }, async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  }));
}

// ---- observation --------------------------------------------------------------------------------------

interface PodTimes { name: string; steady: boolean; seen: number; created?: number; scheduled?: number; running?: number }

const isReady = (o: Obj) => (o.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
/** A pod the benchmark counts as started: Running and Ready, or already Succeeded (a Job's). */
const isStarted = (p: Obj) => (p.status?.phase === 'Running' && isReady(p)) || p.status?.phase === 'Succeeded';
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)}ms` : 'n/a');
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** Watches pods, nodes, Leases and the watch-lag probe through informers, which resume across the restart. */
class Observer {
  phase: Phase = 'setup';
  readonly pods = new Map<string, PodTimes>();   // by uid
  readonly createdAt = new Map<string, number>();   // steady pod name → request sent
  burstRunning = 0;
  burstAllRunningAt = 0;
  readonly leaseSeen = new Map<string, number>();
  readonly leaseMisses: Record<Phase, number> = { setup: 0, burst: 0, steady: 0, restart: 0, settle: 0 };
  readonly leaseMaxGap: Record<Phase, number> = { setup: 0, burst: 0, steady: 0, restart: 0, settle: 0 };
  readonly notReady: Record<Phase, Set<string>> = { setup: new Set(), burst: new Set(), steady: new Set(), restart: new Set(), settle: new Set() };
  readonly deletedBurstPods: Record<Phase, number> = { setup: 0, burst: 0, steady: 0, restart: 0, settle: 0 };
  readonly probes = new Map<string, number>();
  readonly watchLag: number[] = [];
  readonly podInformer: Informer<Obj>;
  readonly nodeInformer: Informer<Obj>;
  readonly leaseInformer: Informer<Obj>;
  readonly probeInformer: Informer<Obj>;

  constructor(client: HttpClient, private readonly burstTotal: number) {
    this.podInformer = new Informer<Obj>({ client, resource: Resources.pods, namespace: NS, backoff: { initialMs: 100, maxMs: 1000 } });
    this.nodeInformer = new Informer<Obj>({ client, resource: Resources.nodes, backoff: { initialMs: 100, maxMs: 1000 } });
    this.leaseInformer = new Informer<Obj>({ client, resource: Resources.leases, namespace: 'kube-node-lease', backoff: { initialMs: 100, maxMs: 1000 } });
    this.probeInformer = new Informer<Obj>({ client, resource: Resources.configMaps, namespace: NS, backoff: { initialMs: 100, maxMs: 1000 } });
    const pod = (p: Obj) => this.onPod(p);
    this.podInformer.addHandlers({
      onAdd: pod, onUpdate: (_o, p) => pod(p),
      onDelete: (p) => { if (!String(p.metadata.name).startsWith('steady-')) this.deletedBurstPods[this.phase]++; },
    });
    const node = (n: Obj) => { if (!isReady(n)) this.notReady[this.phase].add(String(n.metadata.name)); };
    this.nodeInformer.addHandlers({ onAdd: node, onUpdate: (_o, n) => node(n) });
    this.leaseInformer.addHandlers({
      onAdd: (l) => this.leaseSeen.set(String(l.metadata.name), performance.now()),
      onUpdate: (old, l) => { if (old.spec?.renewTime !== l.spec?.renewTime) this.onRenewal(String(l.metadata.name)); },
    });
    const probe = (c: Obj) => {
      const seq = c.metadata.annotations?.['bench/seq'];
      const sent = seq ? this.probes.get(seq) : undefined;
      if (sent !== undefined) { this.probes.delete(seq!); this.watchLag.push(performance.now() - sent); }
    };
    this.probeInformer.addHandlers({ onAdd: probe, onUpdate: (_o, c) => probe(c) });
  }

  async start(): Promise<void> {
    for (const i of this.informers()) i.start();
    await Promise.all(this.informers().map((i) => i.waitForSync(60_000)));
  }

  informers(): Informer<Obj>[] {
    return [this.podInformer, this.nodeInformer, this.leaseInformer, this.probeInformer];
  }

  private onPod(p: Obj): void {
    const now = performance.now();
    const uid = String(p.metadata.uid);
    let t = this.pods.get(uid);
    if (!t) {
      const name = String(p.metadata.name);
      const steady = name.startsWith('steady-');
      this.pods.set(uid, t = { name, steady, seen: now, created: steady ? this.createdAt.get(name) : undefined });
    }
    if (t.scheduled === undefined && p.spec?.nodeName) t.scheduled = now;
    if (t.running === undefined && isStarted(p)) {
      t.running = now;
      if (!t.steady && ++this.burstRunning === this.burstTotal) this.burstAllRunningAt = now;
    }
  }

  private onRenewal(name: string): void {
    const now = performance.now();
    const last = this.leaseSeen.get(name);
    this.leaseSeen.set(name, now);
    if (last === undefined) return;
    this.noteGap(now - last);
  }

  private noteGap(gap: number): void {
    this.leaseMaxGap[this.phase] = Math.max(this.leaseMaxGap[this.phase], gap);
    if (gap > LEASE_DURATION_MS) this.leaseMisses[this.phase]++;
  }

  /** Leases silent for longer than their duration right now count as missed too (once per phase end). */
  closePhase(): void {
    const now = performance.now();
    for (const [name, at] of this.leaseSeen) {
      if (now - at > LEASE_DURATION_MS) { this.noteGap(now - at); this.leaseSeen.set(name, now); }
    }
  }

  nodesReady(): number {
    return this.nodeInformer.list().filter(isReady).length;
  }

  stop(): Promise<unknown> {
    return Promise.all(this.informers().map((i) => i.stop()));
  }
}

/**
 * The server's V8 heap (used and committed, and memory outside it that V8 knows of) and the control
 * loops' write budget (skiff_controller_write_budget): its bound now, and how many loop writes have
 * waited for a seat. From the server's /metrics; empty when it cannot be read.
 */
async function serverNow(server: Server): Promise<string> {
  const metric = await scrapeMetrics(server.kubeconfigPath);
  const v = (name: string) => metric(`skiff_controller_write_budget{value="${name}"}`);
  const mb = (series: string) => ((metric(series) ?? 0) / 2 ** 20).toFixed(0);
  // V8's heap beside the RSS: whether the memory is live objects, garbage V8 has not collected yet,
  // or outside V8 (malloc, TLS buffers, SQLite).
  const heap = metric('nodejs_heap_size_total_bytes') === undefined ? ''
    : `heap used/total ${mb('nodejs_heap_size_used_bytes')}/${mb('nodejs_heap_size_total_bytes')}MB external ${mb('nodejs_external_memory_bytes')}MB `;
  return heap + (v('limit') === undefined ? '' : `loop budget ${v('limit')} (in flight ${v('in_flight')}, waiting ${v('waiting')}, waited ${v('waited_total')}, cuts ${v('decreases_total')})`);
}

/**
 * The server's requests since it started, by verb and resource, with any error codes (from
 * apiserver_request_total; empty if /metrics could not be read): after the restart, whether the
 * nodes resumed their watches or relisted; around the steady phase, what a pod costs in requests.
 */
async function requestTotals(server: Server): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const [name, v] of await scrapeMetricSeries(server.kubeconfigPath)) {
    if (!name.startsWith('apiserver_request_total{')) continue;
    const label = (k: string) => name.match(new RegExp(`[{,]${k}="([^"]*)"`))?.[1] ?? '';
    const code = label('code');
    const key = `${label('verb')} ${label('resource')}${label('subresource') ? `/${label('subresource')}` : ''}${code.startsWith('2') ? '' : ` ${code}`}`;
    counts.set(key, (counts.get(key) ?? 0) + v);
  }
  return counts;
}

/**
 * The server's garbage collections since it started, by kind, with the time they paused it (from
 * prom-client's nodejs_gc_duration_seconds): after a restart, how many full collections the
 * reconnection storm brought (session 19: one per ~570 new TLS connections, docs/scale.md).
 */
async function gcTotals(server: Server): Promise<string> {
  const by = new Map<string, { n: number; s: number }>();
  for (const [name, v] of await scrapeMetricSeries(server.kubeconfigPath)) {
    const m = /^nodejs_gc_duration_seconds_(count|sum)\{kind="(\w+)"/.exec(name);
    if (!m) continue;
    const e = by.get(m[2]!) ?? { n: 0, s: 0 };
    if (m[1] === 'count') e.n += v; else e.s += v;
    by.set(m[2]!, e);
  }
  if (!by.size) return '(metrics not read)';
  return ['major', 'incremental', 'minor'].filter((k) => by.has(k))
    .map((k) => `${by.get(k)!.n} ${k} (${by.get(k)!.s.toFixed(1)} s)`).join(', ');
}

/** The top request counts, since `before` if given, each also per `per` (e.g. per pod created) when given. */
function formatCounts(now: Map<string, number>, before?: Map<string, number>, per?: number): string {
  if (!now.size) return '(metrics not read)';
  const diff = [...now].map(([k, n]) => [k, n - (before?.get(k) ?? 0)] as const).filter(([, n]) => n > 0);
  return diff.sort((a, b) => b[1] - a[1]).slice(0, 14)
    .map(([k, n]) => `${k}: ${n}${per ? ` (${(n / per).toFixed(2)}/pod)` : ''}`).join(', ');
}

/** Peak RSS and CPU of the current server process over one phase. */
class ProcessMeter {
  peakRss = 0;
  private cpu0 = 0;
  private mainCpu0 = 0;
  private t0 = 0;
  private lastCpu = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly server: Server) {
    this.timer = setInterval(() => this.sample(), 500);
    this.reset();
  }

  reset(): void {
    this.peakRss = 0;
    this.cpu0 = this.lastCpu = cpuSeconds(this.server.proc.pid!);
    this.mainCpu0 = cpuSeconds(this.server.proc.pid!, this.server.proc.pid!);
    this.t0 = performance.now();
  }

  /**
   * The server's main thread's CPU seconds since `reset` (its event loop, where requests and the
   * control loops run; the TLS and other worker threads are not in it). Less swayed by the rest of
   * a busy machine than latencies are: what a change saves that thread shows here.
   */
  mainThreadCpuSeconds(): number {
    return cpuSeconds(this.server.proc.pid!, this.server.proc.pid!) - this.mainCpu0;
  }

  /** A new server process spawned at `t0`: all its CPU counts. */
  newProcess(t0: number): void {
    this.peakRss = 0;
    this.cpu0 = 0;
    this.t0 = t0;
  }

  sample(): void {
    try {
      this.peakRss = Math.max(this.peakRss, rssMb(this.server.proc.pid!));
      this.lastCpu = cpuSeconds(this.server.proc.pid!);
    } catch { /* between kill and relaunch */ }
  }

  /** Server CPU over the phase, % of one core. */
  cpuPct(): number {
    this.sample();
    return ((this.lastCpu - this.cpu0) / ((performance.now() - this.t0) / 1000)) * 100;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ---- phases -------------------------------------------------------------------------------------------

interface SteadyResult {
  created: number; deleted: number; skipped: number; errors: number; errorKinds: Map<string, number>; latencies: number[]; notRunning: number;
  mutating: number[]; reads: number[]; seconds: number;
  /** Where create→Running went: the create's answer, its binding seen, the node's Running seen (ms, per pod). */
  createAnswered: number[]; toScheduled: number[]; scheduledToRunning: number[];
  /** The server's event-loop delay, p99 and max of each 5-s window (prom-client's monitor, reset at each scrape). */
  loopP99: number[]; loopMax: number[];
}

/** Creates `rate` bare pods a second and deletes each after `lifetime`, while timing reads and writes. */
async function steadyPhase(o: Options, obs: Observer, writer: HttpClient, reader: HttpClient, server: Server): Promise<SteadyResult> {
  const r: SteadyResult = {
    created: 0, deleted: 0, skipped: 0, errors: 0, errorKinds: new Map(), latencies: [], notRunning: 0, mutating: [], reads: [], seconds: 0,
    createAnswered: [], toScheduled: [], scheduledToRunning: [], loopP99: [], loopMax: [],
  };
  const live: { name: string; at: number }[] = [];
  const maxInFlight = Math.max(50, o.rate * 2);
  let inFlight = 0;
  let issued = 0;
  let seq = 0;
  const timed = async (samples: number[], fn: () => Promise<unknown>) => {
    const t = performance.now();
    try { await fn(); samples.push(performance.now() - t); return true; } catch (err) {
      r.errors++;
      const kind = err instanceof Error ? ((err as { code?: unknown }).code !== undefined ? `${String((err as { code?: unknown }).code)} ` : '') + err.message.slice(0, 60) : String(err);
      r.errorKinds.set(kind, (r.errorKinds.get(kind) ?? 0) + 1);
      return false;
    }
  };
  const start = performance.now();
  const end = start + o.steadySeconds * 1000;
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => { pending.add(p); void p.finally(() => pending.delete(p)); };
  let lastRead = 0;
  let lastProbe = 0;
  let lastLoop = performance.now();
  // Scraped one at a time: a /metrics render is itself work for the server.
  let scraping = false;
  while (performance.now() < end) {
    const now = performance.now();
    const due = Math.floor(((now - start) / 1000) * o.rate) - issued;
    for (let k = 0; k < due; k++, issued++) {
      if (inFlight >= maxInFlight) { r.skipped++; continue; }
      const name = `steady-${issued}`;
      inFlight++;
      const sent = performance.now();
      obs.createdAt.set(name, sent);
      track(timed(r.mutating, () => writer.create(Resources.pods, NS, {
        apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { app: 'steady' } }, spec: { containers: [container] },
      })).then((ok) => { inFlight--; if (ok) { r.created++; r.createAnswered.push(performance.now() - sent); live.push({ name, at: performance.now() }); } }));
    }
    while (live.length && now - live[0]!.at > o.podLifetimeS * 1000 && inFlight < maxInFlight) {
      const { name } = live.shift()!;
      inFlight++;
      track(timed(r.mutating, () => writer.delete(Resources.pods, NS, name)).then((ok) => { inFlight--; if (ok) r.deleted++; }));
    }
    if (now - lastRead >= 100) {
      lastRead = now;
      const nodes = obs.nodeInformer.keys();
      const node = nodes[Math.floor(Math.random() * nodes.length)];
      if (node) track(timed(r.reads, () => reader.get(Resources.nodes, undefined, node)));
      track(timed(r.reads, () => reader.get(Resources.namespaces, undefined, NS)));
    }
    if (now - lastLoop >= 5000 && !scraping) {
      lastLoop = now;
      scraping = true;
      track(scrapeMetrics(server.kubeconfigPath).then((metric) => {
        const p99 = metric('nodejs_eventloop_lag_p99_seconds'), max = metric('nodejs_eventloop_lag_max_seconds');
        if (p99 !== undefined) r.loopP99.push(p99 * 1000);
        if (max !== undefined) r.loopMax.push(max * 1000);
      }, () => undefined).finally(() => { scraping = false; }));
    }
    if (now - lastProbe >= 200) {
      lastProbe = now;
      const s = String(++seq);
      obs.probes.set(s, performance.now());
      track(timed(r.mutating, () => writer.patch(Resources.configMaps, NS, 'lag-probe', 'merge', { metadata: { annotations: { 'bench/seq': s } } })));
    }
    await sleep(10);
  }
  r.seconds = (performance.now() - start) / 1000;
  await Promise.all([...pending]);
  // Whatever is still alive goes; the latency of those counts as well.
  await forEachConcurrent(live.splice(0), 32, ({ name }) => timed(r.mutating, () => writer.delete(Resources.pods, NS, name)).then((ok) => { if (ok) r.deleted++; }));
  for (const p of obs.pods.values()) {
    if (!p.steady || p.created === undefined) continue;
    if (p.running === undefined) r.notRunning++;
    else r.latencies.push(p.running - p.created);
    if (p.scheduled !== undefined) {
      r.toScheduled.push(p.scheduled - p.created);
      if (p.running !== undefined) r.scheduledToRunning.push(p.running - p.scheduled);
    }
  }
  return r;
}

/** The burst: the workloads created at once, then watched until every pod runs (or the timeout). */
async function burstPhase(o: Options, server: Server, obs: Observer, meter: ProcessMeter, admin: HttpClient): Promise<{ done: boolean; peakRss: number; summary: string }> {
  obs.phase = 'burst';
  const w = workloads(o);
  const burstStart = performance.now();
  await forEachConcurrent(w.daemonSets, 1, (x) => createWithRetry(admin, Resources.daemonSets, NS, x));
  await forEachConcurrent(w.jobs, 4, (x) => createWithRetry(admin, Resources.jobs, NS, x));
  await forEachConcurrent(w.deployments, 8, (x) => createWithRetry(admin, Resources.deployments, NS, x));
  console.log(`burst: ${w.daemonSets.length} DaemonSet, ${w.jobs.length} Jobs, ${w.deployments.length} Deployments created in ${((performance.now() - burstStart) / 1000).toFixed(1)} s`
    + (createRetries ? ` (${createRetries} attempts asked again after no answer or 429/5xx)` : ''));
  const burstDeadline = burstStart + o.timeoutS * 1000;
  let lastReport = performance.now();
  while (obs.burstRunning < o.pods && performance.now() < burstDeadline) {
    await sleep(200);
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const all = [...obs.pods.values()];
      console.log(`  t=${((lastReport - burstStart) / 1000).toFixed(0)}s pods=${all.length} scheduled=${all.filter((p) => p.scheduled !== undefined).length} `
        + `running=${obs.burstRunning} serverRSS=${rssMb(server.proc.pid!).toFixed(0)}MB leaseMisses=${obs.leaseMisses.burst} notReady=${obs.notReady.burst.size} ${await serverNow(server)}`);
    }
  }
  const burstDone = obs.burstRunning >= o.pods;
  const burstEnd = burstDone ? obs.burstAllRunningAt : performance.now();
  const burstCpu = meter.cpuPct();
  const burstRss = meter.peakRss;
  const burstPods = [...obs.pods.values()].filter((p) => !p.steady);
  const sched = burstPods.filter((p) => p.scheduled !== undefined).map((p) => p.scheduled!);
  const firstSeen = Math.min(...burstPods.map((p) => p.seen));
  const schedRate = sched.length / Math.max(0.001, (Math.max(...sched) - firstSeen) / 1000);
  const burstLat = sorted(burstPods.filter((p) => p.running !== undefined).map((p) => p.running! - p.seen));
  obs.closePhase();
  const allRunningS = (burstEnd - burstStart) / 1000;
  console.log(`burst: ${o.pods} pods on ${o.nodes} nodes: scheduled ${schedRate.toFixed(0)} pods/s, all Running ${burstDone ? `in ${allRunningS.toFixed(1)} s` : `NOT within ${o.timeoutS} s (${obs.burstRunning})`}, `
    + `first seen→Running p50 ${ms(percentile(burstLat, 50))} p99 ${ms(percentile(burstLat, 99))}; server peak RSS ${burstRss.toFixed(0)} MB, CPU ${burstCpu.toFixed(0)}%; `
    + `lease misses ${obs.leaseMisses.burst} (max gap ${(obs.leaseMaxGap.burst / 1000).toFixed(1)} s), NotReady nodes ${obs.notReady.burst.size}; ${await serverNow(server)}`);
  const summary = `sched=${schedRate.toFixed(0)}pods/s burstAllRunning=${burstDone ? allRunningS.toFixed(1) : `>${o.timeoutS}`}s burstP50=${ms(percentile(burstLat, 50))} burstP99=${ms(percentile(burstLat, 99))}`;
  return { done: burstDone, peakRss: burstRss, summary };
}

async function waitFor(what: string, timeoutMs: number, cond: () => boolean): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) { console.error(`  gave up waiting for ${what} after ${(timeoutMs / 1000).toFixed(0)} s`); return false; }
    await sleep(100);
  }
  return true;
}

// ---- main ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  setLogLevel('error');   // the watches' reconnect warnings during the restart are expected
  const benchStart = performance.now();
  let server: Server | undefined;
  const hollows: ChildProcess[] = [];
  const clients: HttpClient[] = [];
  let obs: Observer | undefined;
  let meter: ProcessMeter | undefined;
  const cleanup = async () => {
    meter?.stop();
    await obs?.stop();
    for (const c of clients) c.close();
    await Promise.all(hollows.map((h) => stopProcess(h)));
    await server?.stop();
  };
  const onSignal = () => { void cleanup().then(() => process.exit(130)); };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const line: string[] = [`scale: nodes=${o.nodes} pods=${o.pods}`];
  try {
    server = await Server.start(o);
    const t0 = performance.now();
    const parts = chunks(o.nodes, o.nodesPerHollow);
    let first = 0;
    hollows.push(...await Promise.all(parts.map((n) => { const f = first; first += n; return startHollow(o, server!, f, n); })));
    const hollowRss = () => hollows.reduce((s, h) => s + (h.exitCode === null ? rssMb(h.pid!) : 0), 0);
    console.log(`${o.nodes} hollow nodes in ${parts.length} processes ready in ${((performance.now() - t0) / 1000).toFixed(1)} s `
      + `(hollow RSS ${hollowRss().toFixed(0)} MB total); server RSS ${rssMb(server.proc.pid!).toFixed(0)} MB`);

    const admin = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench-scale', maxConnections: 16 });
    // The steady phase's clients keep the connections they use, as client-go does (with two idle
    // ones, the writer opened and closed tens of TLS connections a second, costing the server more
    // than a real client would).
    const writer = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench-scale-writer', maxConnections: 64, idleConnections: 64 });
    const reader = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench-scale-reader', maxConnections: 16, idleConnections: 16 });
    const watcher = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench-scale-watch', maxConnections: 8, timeoutMs: 120_000 });
    clients.push(admin, writer, reader, watcher);
    const exists = (err: unknown) => { if (!o.fromData || !isAlreadyExists(err)) throw err; };
    await admin.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }).catch(exists);
    await admin.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'lag-probe', namespace: NS } }).catch(exists);
    obs = new Observer(watcher, o.pods);
    await obs.start();
    meter = new ProcessMeter(server);

    let burstRss = 0;
    if (o.fromData) {
      // The kept workload is there already: wait for every node to be Ready and its pods Running again.
      const total = obs.podInformer.list().length;
      const running = () => obs!.podInformer.list().filter(isStarted).length;
      const ok = await waitFor('the kept pods to be Running and the nodes Ready', o.timeoutS * 1000, () => obs!.nodesReady() >= o.nodes && running() >= total);
      console.log(`from ${o.fromData}: ${total} pods, ${running()} Running, ${obs.nodesReady()} nodes Ready${ok ? '' : ' (NOT all, going on)'}; server RSS ${rssMb(server.proc.pid!).toFixed(0)} MB`);
      line[0] = `scale: nodes=${o.nodes} pods=${total} fromData`;   // the kept pods, not --pods
    } else {
      const requestsBefore = await requestTotals(server);
      const burst = await burstPhase(o, server, obs, meter, admin);
      burstRss = burst.peakRss;
      console.log(`  requests in the burst: ${formatCounts(await requestTotals(server), requestsBefore, o.pods)}`);
      line.push(burst.summary);
      if (!burst.done) process.exitCode = 1;
    }

    // ---- steady
    if (o.steadySeconds > 0 && o.rate > 0) {
      obs.phase = 'steady';
      meter.reset();
      obs.watchLag.length = 0;
      const requestsBefore = await requestTotals(server);
      const s = await steadyPhase(o, obs, writer, reader, server);
      const requestsAfter = await requestTotals(server);
      obs.closePhase();
      const lat = sorted(s.latencies);
      const mut = sorted(s.mutating);
      const reads = sorted(s.reads);
      const lag = sorted(obs.watchLag);
      const cpu = meter.cpuPct();
      const mainCpu = meter.mainThreadCpuSeconds();
      console.log(`steady: ${s.created} created, ${s.deleted} deleted in ${s.seconds.toFixed(0)} s (${(s.created / s.seconds).toFixed(0)}/s asked ${o.rate}/s, ${s.skipped} skipped, ${s.errors} errors); `
        + `create→Running p50 ${ms(percentile(lat, 50))} p99 ${ms(percentile(lat, 99))} (${s.notRunning} never Running); `
        + `mutating p50 ${ms(percentile(mut, 50))} p99 ${ms(percentile(mut, 99))}; read p50 ${ms(percentile(reads, 50))} p99 ${ms(percentile(reads, 99))}; `
        + `watch lag p50 ${ms(percentile(lag, 50))} p99 ${ms(percentile(lag, 99))}; server peak RSS ${meter.peakRss.toFixed(0)} MB, CPU ${cpu.toFixed(0)}%; `
        + `lease misses ${obs.leaseMisses.steady} (max gap ${(obs.leaseMaxGap.steady / 1000).toFixed(1)} s), NotReady nodes ${obs.notReady.steady.size}`);
      const p = (xs: number[], q: number) => ms(percentile(sorted(xs), q));
      console.log(`  create→Running, its parts (p50/p99): create answered ${p(s.createAnswered, 50)}/${p(s.createAnswered, 99)}, `
        + `sent→bound seen ${p(s.toScheduled, 50)}/${p(s.toScheduled, 99)}, bound→Running seen ${p(s.scheduledToRunning, 50)}/${p(s.scheduledToRunning, 99)}; `
        + `server event-loop delay per 5-s window: p99 median ${p(s.loopP99, 50)}, worst p99 ${p(s.loopP99, 100)}, worst max ${p(s.loopMax, 100)}; `
        + `server main thread ${((mainCpu / s.seconds) * 100).toFixed(0)}% of a core, ${((mainCpu * 1000) / Math.max(1, s.created)).toFixed(2)} ms CPU per pod`);
      console.log(`  requests in the steady phase: ${formatCounts(requestsAfter, requestsBefore, s.created)}`);
      if (s.errors) console.log(`  errors: ${[...s.errorKinds].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, n]) => `${n}× ${k}`).join('; ')}`);
      line.push(`steadyP50=${ms(percentile(lat, 50))} steadyP99=${ms(percentile(lat, 99))} mutP99=${ms(percentile(mut, 99))} readP99=${ms(percentile(reads, 99))} `
        + `watchLagP99=${ms(percentile(lag, 99))} steadyRSS=${meter.peakRss.toFixed(0)}MB steadyCpu=${cpu.toFixed(0)}% leaseMisses=${obs.leaseMisses.steady} notReady=${obs.notReady.steady.size}`);
      await waitFor('the steady pods to be gone', 120_000, () => ![...obs!.podInformer.list()].some((p) => String(p.metadata.name).startsWith('steady-')));
    }
    const dbMb = server.datastoreBytes() / 1e6;
    const serverRss = rssMb(server.proc.pid!);
    console.log(`datastore ${dbMb.toFixed(1)} MB; server RSS now ${serverRss.toFixed(0)} MB (${await serverNow(server)}); hollow RSS ${hollowRss().toFixed(0)} MB total`);
    line.push(`serverRSS=${Math.max(burstRss, meter.peakRss, serverRss).toFixed(0)}MB db=${dbMb.toFixed(0)}MB`);

    // ---- kill -9 and recovery
    if (o.restart) {
      const before = new Map<string, string>();
      for (const p of obs.podInformer.list()) before.set(String(p.metadata.name), String(p.metadata.uid));
      obs.phase = 'restart';
      const killedAtWall = Date.now();
      console.log(`kill -9 at ${new Date(killedAtWall).toISOString()}`);
      await server.kill9();
      const t = performance.now();
      const { answerMs, listenMs } = await server.relaunch();
      meter.newProcess(t);
      // Recovered: every node has renewed its Lease since the kill, and every node is Ready.
      const renewedSinceKill = () => obs!.leaseInformer.list().filter((l) => Date.parse(String(l.spec?.renewTime)) > killedAtWall).length;
      const recovered = await waitFor('every node to renew its Lease and be Ready after the restart', 180_000,
        () => renewedSinceKill() >= o.nodes && obs!.nodesReady() >= o.nodes);
      const recoverS = (performance.now() - t) / 1000;
      console.log(`kill -9: listening after ${(listenMs / 1000).toFixed(1)} s, answering after ${(answerMs / 1000).toFixed(1)} s, every node renewed and Ready after ${recovered ? `${recoverS.toFixed(1)} s` : `— NOT (${renewedSinceKill()} renewed, ${obs.nodesReady()} Ready)`}`);
      console.log(`  garbage collections in the restarted server until then (its datastore load included): ${await gcTotals(server)}`);
      // Past the node monitor grace period, so a node the restarted server wrongly judged would show.
      obs.phase = 'settle';
      await sleep(Math.max(0, o.settleS * 1000 - (performance.now() - t)));
      obs.closePhase();
      let evicted = 0;
      let recreated = 0;
      const now = new Map(obs.podInformer.list().map((p) => [String(p.metadata.name), String(p.metadata.uid)]));
      for (const [name, uid] of before) if (now.get(name) !== uid) evicted++;
      for (const [name] of now) if (!before.has(name)) recreated++;
      console.log(`  requests to the restarted server: ${formatCounts(await requestTotals(server))}`);
      const notReady = new Set([...obs.notReady.restart, ...obs.notReady.settle]).size;
      const misses = obs.leaseMisses.restart + obs.leaseMisses.settle;
      console.log(`after the restart (${o.settleS} s watched): ${evicted} pods gone or replaced, ${recreated} new pods, ${notReady} nodes NotReady, `
        + `${misses} lease misses (max gap ${(Math.max(obs.leaseMaxGap.restart, obs.leaseMaxGap.settle) / 1000).toFixed(1)} s), burst pods deleted ${obs.deletedBurstPods.restart + obs.deletedBurstPods.settle}; `
        + `server RSS ${rssMb(server.proc.pid!).toFixed(0)} MB, CPU ${meter.cpuPct().toFixed(0)}%`);
      line.push(`listen=${(listenMs / 1000).toFixed(1)}s answer=${(answerMs / 1000).toFixed(1)}s recovery=${recovered ? recoverS.toFixed(1) : '>180'}s evicted=${evicted} recreated=${recreated} restartNotReady=${notReady}`);
      if (!recovered || evicted || recreated) process.exitCode = 1;
    }
    line.push(`took=${((performance.now() - benchStart) / 1000).toFixed(0)}s`);
    console.log(`\n${new Date().toISOString()} ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}`);
    console.log(line.join(' '));
  } catch (err) {
    if (server) console.error(`server log tail:\n${server.logTail()}`);
    throw err;
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
