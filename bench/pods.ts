// Pods on one real node (issue 4): a server, one `skiff agent` with the real containerd, then 100
// busybox pods. Reports time to join (agent spawn → Node Ready), the agent's and containerd's RSS
// idle and with 100 pods, and pod startup latency (create → first seen Running and Ready through a
// watch). Needs root, containerd, runc, the CNI bridge plugin and /bin/busybox. Run after
// `npm run build`:
//   node --import tsx bench/pods.ts [--pods 100] [--rate 0] [--timeout 120]
// (BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the agent; it runs node directly,
// so bin/skiff's memory flags for the agent are not applied unless listed too.)
// --rate 0 creates all pods at once (a burst: the node's throughput decides the tail); --rate N
// creates N pods per second (Kubernetes' pod-startup SLO is measured at a steady creation rate).
// It also prints the CPU seconds the agent, containerd (with its CNI plugins), the shims (with runc)
// and the server spent per pod, which tell where a burst's time goes on a small machine.
// Everything it starts is torn down, even on failure or Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources, type ClientWatchEvent, type WatchHandle } from '../src/client/types.js';
import type { KObject } from '../src/api/object.js';
import { containerdPaths } from '../src/agent/runtime/containerd-config.js';
import { findContainerd } from '../src/agent/runtime/containerd.js';
import { findShims, teardownRuntime } from '../src/agent/runtime/teardown.js';
import { writeBusyboxImage, TEST_IMAGE } from '../test/helpers/images.js';
import { startBenchServer, cpuSeconds, rssMb, type BenchServer, stopProcess, sleep } from './lib/server.js';
import { percentile } from './lib/stats.js';

type Obj = KObject & { spec?: any; status?: any };

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NS = 'bench';
const NODE = 'bench-node';
const BRIDGE = 'skbench0';
const GOALS = { p99Ms: 2000, idleRssMb: 60, loadedRssMb: 120, joinMs: 3000 };

interface Options { pods: number; rate: number; timeoutS: number }

function options(argv: string[]): Options {
  const o: Options = { pods: 100, rate: 0, timeoutS: 120 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], Number(argv[i + 1])];
    if (flag === '--pods' && v > 0) o.pods = v;
    else if (flag === '--rate' && v >= 0) o.rate = v;
    else if (flag === '--timeout' && v > 0) o.timeoutS = v;
    else throw new Error(`unknown or invalid option ${flag} ${argv[i + 1] ?? ''}`);
  }
  return o;
}

function requirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/bin/busybox']) if (!existsSync(bin)) missing.push(bin);
  return missing;
}



function logTail(path: string): string {
  try { return readFileSync(path, 'utf8').split('\n').slice(-25).join('\n'); } catch { return '(no log)'; }
}

function pod(i: number): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${i}`, namespace: NS, labels: { app: 'bench' } },
    // No nodeName: the scheduler binds them, as for any workload. Zero grace: teardown need not wait on sleep.
    spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image: TEST_IMAGE, command: ['sleep', '3600'] }] },
  };
}

/** Runs `fn` over 0..n-1 from `concurrency` loops. */
async function forEachConcurrent(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
    for (let i = next++; i < n; i = next++) await fn(i);
  }));
}

const isReady = (o: Obj, type: string) => o.status?.conditions?.some((c: any) => c.type === type && c.status === 'True') === true;

interface Memory { agent: number; containerd: number; shims: number; shimCount: number }
interface Cpu { agent: number; containerd: number; shims: number; server: number }

function cpu(agent: ChildProcess, agentDir: string, server: BenchServer): Cpu {
  const paths = containerdPaths(agentDir);
  const cd = findContainerd(paths.config);
  return {
    agent: cpuSeconds(agent.pid!), containerd: cd === undefined ? 0 : cpuSeconds(cd), server: cpuSeconds(server.proc.pid!),
    shims: findShims(paths.socket).reduce((s, pid) => s + cpuSeconds(pid), 0),
  };
}

function memory(agent: ChildProcess, agentDir: string): Memory {
  const paths = containerdPaths(agentDir);
  const cd = findContainerd(paths.config);
  if (cd === undefined) throw new Error(`no containerd running for ${agentDir}`);
  const shims = findShims(paths.socket);
  return { agent: rssMb(agent.pid!), containerd: rssMb(cd), shims: shims.reduce((s, pid) => s + rssMb(pid), 0), shimCount: shims.length };
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const missing = requirements();
  if (missing.length) throw new Error(`bench/pods needs: ${missing.join(', ')}`);
  // Short: containerd's socket path must fit a unix socket address.
  const agentDir = mkdtempSync('/tmp/skiff-bp-');
  const agentLog = join(agentDir, 'agent.log');
  let server: BenchServer | undefined;
  let agent: ChildProcess | undefined;
  let client: HttpClient | undefined;
  let watch: WatchHandle | undefined;
  const teardown = async () => {
    watch?.stop();
    // The agent stops first (a profiled agent then writes its profile on a clean exit); its containers
    // live on and teardownRuntime removes them, with the pods' cgroups named by their uids.
    await stopProcess(agent);
    const uids = client ? await client.list(Resources.pods, NS).then((l) => l.items.map((p) => p.metadata.uid!), () => []) : [];
    client?.close();
    await server?.stop();
    await teardownRuntime({ dataDir: agentDir, removeDataDir: true, cgroupParents: uids.map((uid) => `/kubepods/pod${uid}`) });
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  };
  let tornDown: Promise<void> | undefined;
  const once = () => (tornDown ??= teardown());
  const onSignal = () => { void once().then(() => process.exit(130)); };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    mkdirSync(join(agentDir, 'agent', 'images'), { recursive: true });
    writeBusyboxImage(join(agentDir, 'agent', 'images'), 'busybox.tar');
    server = await startBenchServer(['--log-level', 'warn']);
    client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench' });
    const c = client;
    const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();

    // Join: agent spawn → the Node's Ready condition True, polled every 20 ms.
    const logFd = openSync(agentLog, 'a');
    const t0 = performance.now();
    // BENCH_AGENT_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") runs the agent under node with those flags.
    const nodeArgs = process.env.BENCH_AGENT_NODE_ARGS?.split(' ').filter(Boolean);
    const [cmd, pre] = nodeArgs ? [process.execPath, [...nodeArgs, join(ROOT, 'dist', 'cli', 'main.js')]] : [join(ROOT, 'bin', 'skiff'), []];
    agent = spawn(cmd, [...pre, 'agent', '--server', `https://127.0.0.1:${server.port}`, '--token', token,
      '--data-dir', agentDir, '--node-name', NODE, '--node-ip', '127.0.0.1', '--bridge-name', BRIDGE], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    for (;;) {
      if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`the agent exited before its node was Ready:\n${logTail(agentLog)}`);
      const node = await c.get<Obj>(Resources.nodes, undefined, NODE).catch(() => undefined);
      if (node && isReady(node, 'Ready')) break;
      if (performance.now() - t0 > 60_000) throw new Error(`node not Ready after 60 s:\n${logTail(agentLog)}`);
      await sleep(20);
    }
    const joinMs = performance.now() - t0;
    console.log(`node ${NODE} Ready ${joinMs.toFixed(0)} ms after the agent was spawned`);
    // Idle means past the join's burst of work (image import, first status and lease writes) and
    // settled: the Node is Ready before the agent has started containerd and imported images, and V8
    // gives memory back about 8 s after its last full collection. The earlier figure is shown too.
    await sleep(5000);
    const early = rssMb(agent.pid!);
    const readyDeadline = performance.now() + 30_000;
    while (!readFileSync(agentLog, 'utf8').includes('skiff agent ready') && performance.now() < readyDeadline) await sleep(100);
    await sleep(10_000);
    const idle = memory(agent, agentDir);
    console.log(`idle: agent RSS ${idle.agent.toFixed(1)} MB (${early.toFixed(1)} MB 5 s after Ready), containerd RSS ${idle.containerd.toFixed(1)} MB`);

    await c.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    // Creation is taken as the moment the create request is sent: creationTimestamp has only
    // one-second resolution, too coarse for sub-second latencies.
    const createdAt = new Map<string, number>();
    const runningAt = new Map<string, number>();
    let watchError: Error | undefined;
    const listed = await c.list(Resources.pods, NS);
    watch = c.watch<Obj>(Resources.pods, NS, listed.resourceVersion, (e: ClientWatchEvent<Obj>) => {
      if (e.type === 'BOOKMARK' || e.type === 'DELETED') return;
      const name = e.object.metadata.name!;
      if (!runningAt.has(name) && e.object.status?.phase === 'Running' && isReady(e.object, 'Ready')) runningAt.set(name, performance.now());
    }, { timeoutSeconds: o.timeoutS + 60 });
    void watch.done.then((err) => { watchError = err ?? new Error('the pod watch ended early'); });

    const cpuBefore = cpu(agent, agentDir, server);
    const start = performance.now();
    await forEachConcurrent(o.pods, o.rate > 0 ? o.pods : 16, async (i) => {
      if (o.rate > 0) await sleep(start + (i * 1000) / o.rate - performance.now());
      createdAt.set(`bench-${i}`, performance.now());
      await c.create(Resources.pods, NS, pod(i));
    });
    console.log(`created ${o.pods} pods in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    const deadline = start + o.timeoutS * 1000;
    let lastReport = performance.now();
    while (runningAt.size < o.pods && performance.now() < deadline && !watchError) {
      await sleep(50);
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        console.log(`  t=${((lastReport - start) / 1000).toFixed(0)}s running=${runningAt.size}/${o.pods} agentRSS=${rssMb(agent.pid!).toFixed(0)}MB`);
      }
    }
    const allRunningS = (Math.max(...runningAt.values()) - start) / 1000;
    const cpuAfter = cpu(agent, agentDir, server);
    const perPod = (k: keyof Cpu) => `${k} ${(((cpuAfter[k] - cpuBefore[k]) * 1000) / o.pods).toFixed(0)}`;
    console.log(`CPU ms per pod until all Running: ${(['agent', 'containerd', 'shims', 'server'] as const).map(perPod).join(', ')}`);
    const latencies = [...runningAt].map(([name, t]) => t - createdAt.get(name)!).sort((a, b) => a - b);
    // Steady state with every pod running, as for idle.
    await sleep(5000);
    const loaded = memory(agent, agentDir);

    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const mark = (okay: boolean) => (okay ? 'ok' : 'MISSED');
    console.log(`all ${runningAt.size} pods Running and Ready ${allRunningS.toFixed(1)} s after the first create`);
    console.log(`with ${o.pods} pods: agent RSS ${loaded.agent.toFixed(1)} MB, containerd RSS ${loaded.containerd.toFixed(1)} MB, `
      + `${loaded.shimCount} shims ${loaded.shims.toFixed(0)} MB in all`);
    console.log(`goals: p99 < ${GOALS.p99Ms} ms ${mark(p99 < GOALS.p99Ms)}; agent RSS idle < ${GOALS.idleRssMb} MB ${mark(idle.agent < GOALS.idleRssMb)}, `
      + `with ${o.pods} pods < ${GOALS.loadedRssMb} MB ${mark(loaded.agent < GOALS.loadedRssMb)}; join < ${GOALS.joinMs} ms ${mark(joinMs < GOALS.joinMs)}`);
    console.log(`pods(${o.rate > 0 ? `${o.rate}/s` : 'burst'}): join=${joinMs.toFixed(0)}ms agentRSS(idle)=${idle.agent.toFixed(0)}MB agentRSS(${o.pods})=${loaded.agent.toFixed(0)}MB `
      + `containerdRSS=${loaded.containerd.toFixed(0)}MB startup_p50=${p50.toFixed(0)}ms p99=${p99.toFixed(0)}ms`);
    if (runningAt.size < o.pods) {
      console.error(`not all pods Running: ${runningAt.size}/${o.pods}${watchError ? `; watch: ${watchError.message}` : ''}\n${logTail(agentLog)}`);
      process.exitCode = 1;
    }
  } finally {
    await once();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
