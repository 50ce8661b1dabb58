// NetworkPolicy programming (issue 12's benchmark, policy part). What is measured, and how:
// a real `skiff server` (API, watch cache, validation) holds 1,000 pod objects (hollow: no containers;
// each with a status IP and named container ports) in 10 namespaces; the agent's own network policy
// controller (src/agent/network/policy, the code `skiff agent` runs) is started in this process with
// its nftables transactions sent to a scratch network namespace, so the kernel part is real nft work
// on a real table while no containerd is needed. Then:
//  1. 100 policies created through the API at once (default deny, pod/namespace selectors, ipBlocks
//     with except, named ports, egress with DNS) → all their chains in the kernel: the headline figure;
//  2. a cold start with everything in the API and no table (informer sync, model, one transaction);
//  3. a restart with the table in place (reads it back, writes the difference: nothing);
//  4. a new pod: `admit(pod, ip)`, what the pod worker waits for between CNI and its first container,
//     repeated; with the size of each transaction (it grows with the changed pod, not with the table).
// Needs root and nft. Run: node --import tsx bench/net-policy.ts [--pods 1000] [--policies 100] [--local 1000] [--admits 30]
// (--local: how many of the pods run on the measured node; the others are peers on other nodes.)
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources } from '../src/client/types.js';
import { NETWORK_POLICIES, startNetworkPolicy, type RunningNetworkPolicy } from '../src/agent/network/policy/controller.js';
import { parseTableJson } from '../src/agent/network/proxy/nft-state.js';
import { emptyState } from '../src/agent/network/proxy/nft-diff.js';
import { startBenchServer, sleep, type BenchServer } from './lib/server.js';
import { percentile } from './lib/stats.js';

const GOALS = { programMs: 1000 };
const NETNS = `sknpb${process.pid % 100000}`;
const NODE = 'bench-node';
const TABLE = 'skiff-netpol';
const NAMESPACES = 10;

interface Options { pods: number; policies: number; local: number; admits: number }
function options(argv: string[]): Options {
  const o: Options = { pods: 1000, policies: 100, local: 1000, admits: 30 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], Number(argv[i + 1])];
    if (flag === '--pods' && v > 0 && v <= 60000) o.pods = v;
    else if (flag === '--policies' && v > 0 && v <= 10000) o.policies = v;
    else if (flag === '--local' && v >= 0) o.local = v;
    else if (flag === '--admits' && v > 0) o.admits = v;
    else throw new Error(`unknown or invalid option ${flag} ${argv[i + 1] ?? ''}`);
  }
  o.local = Math.min(o.local, o.pods);
  return o;
}

const sh = (cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 1 << 28 });
const nft = (...args: string[]) => sh(['nsenter', `--net=/var/run/netns/${NETNS}`, 'nft', ...args]);

/** The controller's kernel access, into the scratch namespace: one `nft -f -` per transaction, as in the agent. */
const kernel = {
  run: (script: string) => new Promise<void>((resolve, reject) => {
    const p = spawn('nsenter', [`--net=/var/run/netns/${NETNS}`, 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('close', (code) => code === 0 ? resolve() : reject(new Error(err.slice(0, 500))));
    p.stdin.end(script);
  }),
  read: async (family: string, table: string) => {
    const r = nft('-j', 'list', 'table', family, table);
    return r.status === 0 ? parseTableJson(r.stdout) : emptyState();
  },
};

const podIp = (i: number) => `10.42.${Math.floor(i / 250)}.${(i % 250) + 2}`;

function policySpec(ns: number, j: number): object {
  if (j === 0) return { podSelector: {}, policyTypes: ['Ingress', 'Egress'] };
  const app = `a${j % 10}`;
  return {
    podSelector: { matchLabels: { app } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      { from: [{ podSelector: { matchLabels: { tier: `t${j % 3}` } } }], ports: [{ port: 'http' }] },
      { from: [{ namespaceSelector: { matchLabels: { team: `n${(ns + 1) % NAMESPACES}` } }, podSelector: { matchLabels: { app } } }], ports: [{ port: 8080 }, { port: 9000, endPort: 9100 }] },
      { from: [{ ipBlock: { cidr: `192.168.${j}.0/24`, except: [`192.168.${j}.128/25`] } }] },
    ],
    egress: [
      { to: [{ podSelector: { matchLabels: { app: `a${(j + 1) % 10}` } } }], ports: [{ port: 8080 }] },
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }] },
    ],
  };
}

function podObject(i: number, o: Options, name = `p${i}`) {
  const ns = `bench-${i % NAMESPACES}`;
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: `a${Math.floor(i / NAMESPACES) % 10}`, tier: `t${i % 3}` } },
    spec: {
      nodeName: i < o.local ? NODE : `other-${i % 10}`,
      containers: [{ name: 'c', image: 'busybox', ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9090 }] }],
    },
  };
}

async function concurrently(n: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, width) }, async () => { for (let i = next++; i < n; i = next++) await fn(i); }));
}

function policyChains(): number {
  const r = nft('list', 'chains', 'ip');   // (the scratch namespace holds only this table)
  return r.status === 0 ? (r.stdout.match(/chain (ingress|egress)-[0-9A-F]{8}-bench-/g) ?? []).length : 0;
}

async function waitFor(what: string, fn: () => boolean, timeoutMs: number, everyMs = 10): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (fn()) return performance.now();
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespace, nftables)');
  let server: BenchServer | undefined;
  let client: HttpClient | undefined;
  let np: RunningNetworkPolicy | undefined;
  const cleanup = async () => {
    await np?.stop().catch(() => undefined);
    client?.close();
    sh(['ip', 'netns', 'del', NETNS]);
    await server?.stop();
  };
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  try {
    sh(['ip', 'netns', 'del', NETNS]);
    if (sh(['ip', 'netns', 'add', NETNS]).status !== 0) throw new Error('cannot create a network namespace');
    server = await startBenchServer();
    client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench', maxConnections: 16 });
    const c = client;
    for (let n = 0; n < NAMESPACES; n++) {
      await c.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `bench-${n}`, labels: { team: `n${n}` } } });
    }
    let t = performance.now();
    await concurrently(o.pods, 16, async (i) => {
      const p = podObject(i, o);
      await c.create(Resources.pods, p.metadata.namespace, p as any);
      await c.patch(Resources.pods, p.metadata.namespace, p.metadata.name, 'merge', { status: { phase: 'Running', podIP: podIp(i), podIPs: [{ ip: podIp(i) }] } }, { subresource: 'status' });
    });
    console.log(`${o.pods} pods (${o.local} on the measured node) in ${NAMESPACES} namespaces created in ${Math.round(performance.now() - t)} ms`);

    const start = () => startNetworkPolicy({ client: c, nodeName: NODE, table: TABLE, podCidr: '10.42.0.0/16', dnsAddress: '10.42.0.1', ...kernel });
    np = start();
    await np.ready;

    // 1. 100 policies at once through the API → all their chains in the kernel.
    const perNs = Math.ceil(o.policies / NAMESPACES);
    const expectedChains = (o.policies - Math.min(o.policies, NAMESPACES)) * 2;   // deny policies (one per namespace) have no chain, the others one per direction
    t = performance.now();
    let lastWrite = 0;
    await concurrently(o.policies, 16, async (k) => {
      const ns = k % NAMESPACES;
      const j = Math.floor(k / NAMESPACES) % perNs;
      await c.create(NETWORK_POLICIES, `bench-${ns}`, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `p${j}`, namespace: `bench-${ns}` }, spec: policySpec(ns, j) } as any);
      lastWrite = performance.now();
    });
    const programmed = await waitFor('the policies\' chains in the kernel', () => policyChains() >= expectedChains, 120_000);
    const programMs = programmed - t;
    const lagMs = programmed - lastWrite;
    const elements = (nft('list', 'table', 'ip', TABLE).stdout.match(/\d+\.\d+\.\d+\.\d+/g) ?? []).length;
    console.log(`${o.policies} policies: first API write → all ${expectedChains} chains in the kernel ${Math.round(programMs)} ms (last write acknowledged → kernel ${Math.round(lagMs)} ms); table holds ~${elements} addresses`);

    // 2. Cold start: everything in the API, no table.
    await np.stop();
    nft('delete', 'table', 'ip', TABLE);
    t = performance.now();
    np = start();
    await np.ready;
    const coldMs = performance.now() - t;
    const cold = np.lastBatch();
    console.log(`cold start (${o.policies} policies, ${o.pods} pods, no table): ready in ${Math.round(coldMs)} ms; the transaction: ${cold.lines} nft lines, ${cold.ms} ms (model + diff + nft; \`nft -f\` ${cold.nftMs} ms)`);

    // 3. Restart with the table in place.
    await np.stop();
    t = performance.now();
    np = start();
    await np.ready;
    const warmMs = performance.now() - t;
    const warmLines = np.lastBatch().lines;
    console.log(`restart with the table in place: ready in ${Math.round(warmMs)} ms, ${warmLines} nft lines written`);

    // 4. New pods: admit() is what a pod worker waits for before its first container.
    const admits: number[] = [];
    const lines: number[] = [];
    const batchMs: number[] = [];
    const nftMs: number[] = [];
    for (let i = 0; i < o.admits; i++) {
      const p = podObject(i, { ...o, local: o.pods }, `new-${i}`);
      const created = await c.create<any>(Resources.pods, p.metadata.namespace, p as any);
      const ip = `10.42.250.${i + 2}`;
      const t0 = performance.now();
      await np.admit(created, [ip]);
      admits.push(performance.now() - t0);
      lines.push(np.lastBatch().lines);
      batchMs.push(np.lastBatch().ms);
      nftMs.push(np.lastBatch().nftMs);
      if (nft('get', 'element', 'ip', TABLE, 'local-pods', `{ ${ip} }`).status !== 0) throw new Error(`${ip} not in the kernel after admit()`);
      await sleep(50);
    }
    admits.sort((a, b) => a - b);
    const p50 = percentile(admits, 50);
    const p99 = percentile(admits, 99);
    batchMs.sort((a, b) => a - b);
    nftMs.sort((a, b) => a - b);
    console.log(`new pod → its rules in the kernel (admit, before its first container): p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms over ${o.admits} (the controller's batch — fragment, diff, nft transaction — p50 ${percentile(batchMs, 50)} ms, of which \`nft -f\` ${percentile(nftMs, 50)} ms); nft lines per pod: ${Math.min(...lines)}–${Math.max(...lines)} (O(changed pod), not O(table))`);

    const met = programMs < GOALS.programMs;
    console.log(`SUMMARY net-policy: ${o.policies} policies over ${o.pods} pods programmed in ${Math.round(programMs)} ms (goal < ${GOALS.programMs} ms: ${met ? 'met' : 'MISSED'}); cold start ${Math.round(coldMs)} ms; restart writes ${warmLines} lines; a new pod's rules in place in ${p50.toFixed(1)} ms p50 / ${p99.toFixed(1)} ms p99 before its containers start`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
