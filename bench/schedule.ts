// Scheduling benchmark (issue 3): a server, `skiff hollow --count 1000`, then 10,000 pods as 100
// Deployments × 100 replicas. Reports scheduling throughput, time until every pod is Running, pod
// startup latency (first seen → Running and Ready, both observed through one watch), and the
// server's RSS and CPU. Run after `npm run build`:
//   node --import tsx bench/schedule.ts [--nodes 1000] [--deployments 100] [--replicas 100]
//     [--workload deployments|pods|bound] [--timeout 180] [--pod-start-delay 0]
// `pods` creates bare unbound Pods (scheduler only); `bound` creates Pods with spec.nodeName set
// round-robin (no scheduler: measures the API server and the hollow kubelets alone).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources, type ClientWatchEvent, type WatchHandle } from '../src/client/types.js';
import type { KObject } from '../src/api/object.js';
import { rssMb, freePort, readyz, stopProcess, sleep } from './lib/server.js';
import { percentile } from './lib/stats.js';

type Obj = KObject & { spec?: any; status?: any };
type Workload = 'deployments' | 'pods' | 'bound';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NS = 'bench';

interface Options { nodes: number; deployments: number; replicas: number; workload: Workload; timeoutS: number; podStartDelay: number; cli: string }

function options(argv: string[]): Options {
  const o: Options = { nodes: 1000, deployments: 100, replicas: 100, workload: 'deployments', timeoutS: 180, podStartDelay: 0, cli: join(ROOT, 'dist', 'cli', 'main.js') };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], argv[i + 1] ?? ''];
    if (flag === '--nodes') o.nodes = Number(v);
    else if (flag === '--deployments') o.deployments = Number(v);
    else if (flag === '--replicas') o.replicas = Number(v);
    else if (flag === '--workload' && ['deployments', 'pods', 'bound'].includes(v)) o.workload = v as Workload;
    else if (flag === '--timeout') o.timeoutS = Number(v);
    else if (flag === '--pod-start-delay') o.podStartDelay = Number(v);
    // The CLI entry server and hollow run from (default: the build), e.g. a private build under .tmp.
    else if (flag === '--cli') o.cli = v;
    else throw new Error(`unknown or invalid option ${flag} ${v}`);
  }
  return o;
}

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;   // USER_HZ is 100 on Linux
}


interface BenchServer { proc: ChildProcess; port: number; dataDir: string; kubeconfigPath: string; stop(): Promise<void> }



/** `skiff server` from the same CLI entry as the hollow nodes (bench/lib/server.ts always runs bin/skiff). */
async function startServer(o: Options): Promise<BenchServer> {
  if (!existsSync(o.cli)) throw new Error(`${o.cli} does not exist: run \`npm run build\` first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-schedule-'));
  const port = await freePort();
  const kubeconfigPath = join(dataDir, 'kubeconfig.yaml');
  const logPath = join(dataDir, 'server.log');
  const logFd = openSync(logPath, 'a');
  const proc = spawn(process.execPath, [o.cli, 'server', '--data-dir', dataDir, '--https-listen-port', String(port),
    '--bind-address', '127.0.0.1', '--write-kubeconfig', kubeconfigPath, '--disable-agent', '--log-level', 'warn'],
  { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const server = { proc, port, dataDir, kubeconfigPath, stop: async () => { await stopProcess(proc); rmSync(dataDir, { recursive: true, force: true }); } };
  const deadline = performance.now() + 30_000;
  while (!(await readyz(port)) || !existsSync(kubeconfigPath)) {
    if (proc.exitCode !== null || performance.now() > deadline) {
      const log = readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n');
      await server.stop();
      throw new Error(`skiff server did not become ready:\n${log}`);
    }
    await sleep(50);
  }
  return server;
}

/** Starts `skiff hollow`; resolves once it reports every node ready. */
async function startHollow(o: Options, server: BenchServer): Promise<ChildProcess> {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const proc = spawn(process.execPath, [o.cli, 'hollow', '--server', `https://127.0.0.1:${server.port}`, '--token', token,
    '--count', String(o.nodes), '--data-dir', join(server.dataDir, 'hollow'), '--pod-start-delay', String(o.podStartDelay),
    '--join-concurrency', '32', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('nodes ready')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow exited with ${code} before its nodes were ready`)));
  });
  return proc;
}


const container = { name: 'app', image: 'registry.local/pause:3.9', resources: { requests: { cpu: '10m', memory: '16Mi' } } };

function deployment(i: number, replicas: number): Obj {
  const labels = { app: `bench-${i}` };
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: `bench-${i}`, namespace: NS },
    spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [container] } } },
  };
}

function pod(i: number, node?: string): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${i}`, namespace: NS, labels: { app: 'bench' } },
    spec: { ...(node ? { nodeName: node } : {}), containers: [container] },
  };
}

/** Runs `fn` over 0..n-1 from `concurrency` loops. */
async function forEachConcurrent(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
    for (let i = next++; i < n; i = next++) await fn(i);
  }));
}

interface PodTimes { seen: number; scheduled?: number; running?: number }

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  // Every workload makes deployments × replicas pods, so the modes compare.
  const total = o.deployments * o.replicas;
  let server: BenchServer | undefined;
  let hollow: ChildProcess | undefined;
  let watch: WatchHandle | undefined;
  let client: HttpClient | undefined;
  const onSignal = () => { void Promise.all([stopProcess(hollow), server?.stop()]).then(() => process.exit(130)); };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    server = await startServer(o);
    const t0 = performance.now();
    hollow = await startHollow(o, server);
    console.log(`${o.nodes} hollow nodes ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (hollow RSS ${rssMb(hollow.pid!).toFixed(0)} MB)`);
    client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench' });
    await client.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });

    // One watch sees every pod: first sight, first sight bound to a node, first sight Running+Ready.
    const pods = new Map<string, PodTimes>();
    let running = 0;
    let allRunningAt = 0;
    let watchError: Error | undefined;
    const listed = await client.list(Resources.pods, NS);
    watch = client.watch<Obj>(Resources.pods, NS, listed.resourceVersion, (e: ClientWatchEvent<Obj>) => {
      if (e.type === 'BOOKMARK' || e.type === 'DELETED') return;
      const now = performance.now();
      const uid = String(e.object.metadata.uid);
      let p = pods.get(uid);
      if (!p) pods.set(uid, p = { seen: now });
      if (p.scheduled === undefined && e.object.spec?.nodeName) p.scheduled = now;
      const ready = e.object.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
      if (p.running === undefined && e.object.status?.phase === 'Running' && ready) {
        p.running = now;
        if (++running === total) allRunningAt = now;
      }
    }, { timeoutSeconds: o.timeoutS + 60 });
    void watch.done.then((err) => { watchError = err ?? new Error('the pod watch ended early'); });

    const cpu0 = cpuSeconds(server.proc.pid!);
    const hollowCpu0 = cpuSeconds(hollow.pid!);
    const start = performance.now();
    let peakRss = 0;
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssMb(server!.proc.pid!)); }, 500);
    const c = client;
    try {
      if (o.workload === 'deployments') {
        await forEachConcurrent(o.deployments, 8, (i) => c.create(Resources.deployments, NS, deployment(i, o.replicas)));
      } else {
        await forEachConcurrent(total, 64, (i) => c.create(Resources.pods, NS, pod(i, o.workload === 'bound' ? `hollow-${i % o.nodes}` : undefined)));
      }
      const createdIn = (performance.now() - start) / 1000;
      console.log(`created ${o.workload} in ${createdIn.toFixed(1)} s`);
      const deadline = start + o.timeoutS * 1000;
      let lastReport = performance.now();
      while (running < total && performance.now() < deadline && !watchError) {
        await sleep(100);
        if (performance.now() - lastReport > 5000) {
          lastReport = performance.now();
          const scheduled = [...pods.values()].filter((p) => p.scheduled !== undefined).length;
          // How long one cheap read and one cheap write wait: what node status and lease writes wait behind.
          const g = performance.now();
          await c.get(Resources.namespaces, undefined, NS);
          const w = performance.now();
          await c.patch(Resources.namespaces, undefined, NS, 'merge', { metadata: { annotations: { 'bench/t': String(Math.round(w)) } } });
          console.log(`  t=${((lastReport - start) / 1000).toFixed(0)}s pods=${pods.size} scheduled=${scheduled} running=${running} `
            + `apiGet=${(w - g).toFixed(0)}ms apiPatch=${(performance.now() - w).toFixed(0)}ms`);
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const end = running === total ? allRunningAt : performance.now();
    const cpuPct = ((cpuSeconds(server.proc.pid!) - cpu0) / ((end - start) / 1000)) * 100;
    const hollowCpuPct = ((cpuSeconds(hollow.pid!) - hollowCpu0) / ((end - start) / 1000)) * 100;
    const serverRss = Math.max(peakRss, rssMb(server.proc.pid!));
    const times = [...pods.values()];
    const sched = times.filter((p) => p.scheduled !== undefined).map((p) => p.scheduled!);
    const firstSeen = Math.min(...times.map((p) => p.seen));
    const schedRate = sched.length / Math.max(0.001, (Math.max(...sched) - firstSeen) / 1000);
    const schedLatencies = times.filter((p) => p.scheduled !== undefined).map((p) => p.scheduled! - p.seen).sort((a, b) => a - b);
    const latencies = times.filter((p) => p.running !== undefined).map((p) => p.running! - p.seen).sort((a, b) => a - b);
    const done = running === total;
    console.log(`schedule: nodes=${o.nodes} pods=${total} sched=${sched.length ? schedRate.toFixed(0) : 'n/a'}pods/s `
      + `allRunning=${done ? ((allRunningAt - start) / 1000).toFixed(1) : `>${o.timeoutS}`}s p50=${percentile(latencies, 50).toFixed(0)}ms `
      + `p99=${percentile(latencies, 99).toFixed(0)}ms serverRSS=${serverRss.toFixed(0)}MB cpu=${cpuPct.toFixed(0)}%`
      + (o.workload === 'deployments' ? '' : ` workload=${o.workload}`)
      + ` hollowRSS=${rssMb(hollow.pid!).toFixed(0)}MB hollowCpu=${hollowCpuPct.toFixed(0)}%`
      + ` schedP50=${percentile(schedLatencies, 50).toFixed(0)}ms schedP99=${percentile(schedLatencies, 99).toFixed(0)}ms`);
    if (!done) {
      console.error(`not all pods Running: ${running}/${total} (seen ${pods.size}, scheduled ${sched.length})${watchError ? `; watch: ${watchError.message}` : ''}`);
      process.exitCode = 1;
    }
  } finally {
    watch?.stop();
    client?.close();
    await stopProcess(hollow);
    await server?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
