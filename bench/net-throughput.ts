// Pod-to-pod TCP throughput across nodes (issue 9's benchmark, its network half): a server and two
// agents on a test LAN (test/helpers/lan.ts: each node a network namespace with a veth into one
// bridge), for the vxlan and then the host-gw backend, against the same veth path without any pod
// network (iperf3 between the two node namespaces directly). Debian's iperf3 runs in each pod's
// network namespace (`nsenter --net=` on the sandbox's netns path, read through CRI) rather than in
// an image: the packets take exactly the pod's kernel path (pod veth → node bridge → routing →
// flannel.1 or the LAN device → the other node → its bridge → the pod), and no image has to carry
// iperf3 and its libraries. Prints Gbit/s for each, the ratio to direct, and a one-line summary.
// Needs root, containerd, runc, the CNI plugins, busybox-static and iperf3. After `npm run build`:
//   node --import tsx bench/net-throughput.ts [--seconds 5] [--runs 5]
// Each backend runs on a fresh LAN and cluster; its direct and pod runs alternate, and each figure is
// the median of its runs, so a shared machine's changing load hits both sides of a ratio alike.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLan, lanRequirements, type TestLan } from '../test/helpers/lan.js';
import type { NetnsHost } from '../test/helpers/netns-host.js';
import { runKubectl } from '../test/helpers/kubectl.js';
import { TEST_IMAGE } from '../test/helpers/images.js';
import { CriClient } from '../src/agent/runtime/cri-client.js';
import { containerdPaths } from '../src/agent/runtime/containerd-config.js';
import { POD_NAME_LABEL } from '../src/agent/pods/labels.js';
import { startBenchServer, sleep, type BenchServer } from './lib/server.js';

const GOAL_RATIO = 0.8;
const PORT = 5201;

interface Options { seconds: number; runs: number }

function options(argv: string[]): Options {
  const o: Options = { seconds: 5, runs: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], Number(argv[i + 1])];
    if (flag === '--seconds' && v > 0) o.seconds = v;
    else if (flag === '--runs' && v > 0) o.runs = v;
    else throw new Error(`unknown or invalid option ${flag} ${argv[i + 1] ?? ''}`);
  }
  return o;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const gbit = (bps: number) => (bps / 1e9).toFixed(2);

/** Runs `cmd` in the network namespace at `netnsPath`; resolves with stdout, rejects on failure. */
function inNetns(netnsPath: string, cmd: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('nsenter', [`--net=${netnsPath}`, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => { clearTimeout(t); code === 0 ? resolve(out) : reject(new Error(`${cmd.join(' ')}: exit ${code}: ${err || out}`)); });
  });
}

interface Path { clientNs: string; serverNs: string; ip: string }

/** One iperf3 run: server in the path's server namespace, client in its client namespace; received bit/s. */
async function iperfOnce(p: Path, seconds: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    // A fresh one-off server per attempt: a failed test also ends a `-1` server.
    const server: ChildProcess = spawn('nsenter', [`--net=${p.serverNs}`, 'iperf3', '-s', '-1', '-p', String(PORT)], { stdio: 'ignore' });
    const exited = new Promise((r) => server.once('exit', r));
    try {
      await sleep(300);
      const json = await inNetns(p.clientNs, ['iperf3', '-c', p.ip, '-p', String(PORT), '-t', String(seconds), '--connect-timeout', '3000', '-J'], (seconds + 30) * 1000)
        .catch((err: Error) => JSON.stringify({ error: err.message }));
      const r = JSON.parse(json) as { error?: string; end?: { sum_received?: { bits_per_second: number } } };
      if (r.end?.sum_received && !r.error) return r.end.sum_received.bits_per_second;
      if (attempt >= 5) throw new Error(`iperf3 to ${p.ip}: ${r.error ?? 'no result'}`);
      console.error(`(retrying: iperf3 to ${p.ip}: ${r.error ?? 'no result'})`);
    } finally {
      server.kill('SIGKILL');
      await exited;
    }
  }
}

/**
 * The direct and the pod path measured alternately (direct, pod, direct, pod...), so that the load
 * of a shared machine drifting during the runs weighs on both alike; medians of each.
 */
async function iperfPaired(direct: Path, pods: Path, o: Options): Promise<{ direct: number; pod: number; spread: string }> {
  const d: number[] = [], p: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    d.push(await iperfOnce(direct, o.seconds));
    p.push(await iperfOnce(pods, o.seconds));
  }
  const range = (xs: number[]) => `${gbit(Math.min(...xs))}–${gbit(Math.max(...xs))}`;
  return { direct: median(d), pod: median(p), spread: `runs: pod ${range(p)}, direct ${range(d)}` };
}

/** The network namespace path of a pod's sandbox, as containerd reports it. */
async function podNetns(node: NetnsHost, pod: string): Promise<string> {
  const cri = new CriClient(containerdPaths(node.dir).socket);
  try {
    const boxes = (await cri.listPodSandbox({ labelSelector: { [POD_NAME_LABEL]: pod } })).filter((b) => b.state === 'SANDBOX_READY');
    if (!boxes[0]) throw new Error(`no ready sandbox for pod ${pod} on ${node.name}`);
    const info = JSON.parse((await cri.podSandboxStatus(boxes[0].id, true)).info.info ?? '{}');
    const path = info.runtimeSpec?.linux?.namespaces?.find((n: { type: string }) => n.type === 'network')?.path;
    if (!path) throw new Error(`sandbox of ${pod}: no network namespace path in its status`);
    return path;
  } finally {
    cri.close();
  }
}

function agentLogs(hosts: NetnsHost[]): string {
  return hosts.map((h) => {
    try { return `--- ${h.name} agent log\n${readFileSync(join(h.dir, 'agent.log'), 'utf8').split('\n').slice(-15).join('\n')}`; } catch { return ''; }
  }).join('\n');
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const missing = lanRequirements();
  if (!existsSync('/usr/bin/iperf3')) missing.push('/usr/bin/iperf3 (Debian iperf3)');
  if (missing.length) throw new Error(`net-throughput needs: ${missing.join(', ')}`);
  let lan: TestLan | undefined;
  let server: BenchServer | undefined;
  const cleanup = async () => { await lan?.destroy(); lan = undefined; await server?.stop(); server = undefined; };
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  const results: { backend: string; direct: number; pod: number; mtu: number }[] = [];
  try {
    // Each backend on a fresh LAN and cluster: nothing one leaves behind can tilt the other's figure.
    for (const backend of ['vxlan', 'host-gw']) {
      lan = createLan();
      const a = lan.addNode('tput-a');
      const b = lan.addNode('tput-b');
      const nsPath = (h: NetnsHost) => `/var/run/netns/${h.netns}`;
      server = await startBenchServer([...lan.serverArgs(), '--flannel-backend', backend]);
      const srv = server;
      const kubectl = async (args: string[], input?: string) => {
        const r = await runKubectl(['--kubeconfig', srv.kubeconfigPath], args, { input, timeoutMs: 150_000 });
        if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr || r.stdout}\n${agentLogs([a, b])}`);
        return r.stdout;
      };
      const token = readFileSync(join(srv.dataDir, 'server', 'node-token'), 'utf8').trim();
      for (const h of [a, b]) lan.startAgent(h, srv, token);
      const deadline = Date.now() + 180_000;
      for (;;) {
        const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json']).catch(() => '{"items":[]}')).items as any[];
        const up = nodes.filter((n) => n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
          && n.metadata.annotations?.['flannel.alpha.coreos.com/backend-type'] === backend);
        if (up.length === 2) break;
        if (Date.now() > deadline) throw new Error(`the two nodes were not Ready on ${backend} within 180 s\n${agentLogs([a, b])}`);
        await sleep(500);
      }
      const pod = (name: string, node: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  nodeName: ${node}
  terminationGracePeriodSeconds: 0
  containers: [{ name: c, image: ${TEST_IMAGE}, command: [sleep, '100000'] }]
---`;
      await kubectl(['apply', '-f', '-'], pod('tput-client', a.name) + pod('tput-server', b.name));
      await kubectl(['wait', '--for=condition=Ready', 'pod/tput-client', 'pod/tput-server', '--timeout=150s']);
      const serverIp = JSON.parse(await kubectl(['get', 'pod', 'tput-server', '-o', 'json'])).status.podIP as string;
      const clientNs = await podNetns(a, 'tput-client');
      const serverNs = await podNetns(b, 'tput-server');
      // The backend routes to the peer once A's agent has seen B's endpoint: wait for that route.
      for (const until = Date.now() + 60_000; ;) {
        const r = JSON.parse(await inNetns(nsPath(a), ['ip', '-j', 'route', 'get', serverIp], 5000))[0] ?? {};
        if (backend === 'vxlan' ? r.dev === 'flannel.1' : r.gateway === b.ip) break;
        if (Date.now() > until) throw new Error(`no ${backend} route to ${serverIp} on ${a.name}: ${JSON.stringify(r)}\n${agentLogs([a, b])}`);
        await sleep(500);
      }
      // `ip`, not /sys: sysfs under nsenter --net still shows the root namespace's devices.
      const mtu = Number(/mtu (\d+)/.exec(await inNetns(clientNs, ['ip', 'link', 'show', 'eth0'], 5000))?.[1]);

      const routes = () => [a, b].map((h) => `--- ${h.name} routes\n${lan!.exec(h, ['ip', 'route']).stdout}`).join('\n');
      const { direct, pod: overPods, spread } = await iperfPaired({ clientNs: nsPath(a), serverNs: nsPath(b), ip: b.ip }, { clientNs, serverNs, ip: serverIp }, o)
        .catch((err: Error) => { throw new Error(`${err.message}\n${routes()}\n${agentLogs([a, b])}`); });
      results.push({ backend, direct, pod: overPods, mtu });
      console.log(`${backend.padEnd(8)} pod→pod ${gbit(overPods)} Gbit/s (pod MTU ${mtu})   direct veth ${gbit(direct)} Gbit/s   ratio ${(overPods / direct * 100).toFixed(0)} %   (${spread})`);
      await cleanup();
    }
    const summary = results.map((r) => `${r.backend} ${gbit(r.pod)} Gbit/s = ${(r.pod / r.direct * 100).toFixed(0)} % of direct ${gbit(r.direct)}`).join('; ');
    const met = results.every((r) => r.pod / r.direct >= GOAL_RATIO);
    console.log(`net-throughput: ${summary} (goal ≥ ${GOAL_RATIO * 100} %: ${met ? 'met' : 'NOT met'}; ${o.runs}×${o.seconds} s iperf3, median)`);
  } finally {
    await cleanup();
  }
}

main().catch((err) => { console.error(err instanceof Error ? err.message : err); process.exit(1); });
