// Ingress proxy throughput (issue 12's benchmark, ingress part): a server in this namespace and one real
// `skiff agent` in a network namespace of its own (its ingress proxy on the namespace's :80/:443), a
// keep-alive HTTP backend in this namespace reached through a Service without selector and a
// hand-written EndpointSlice (so the backend is not the bottleneck a fork-per-connection busybox
// httpd would be), and `wrk` from this namespace:
//  1. directly to the backend (the "pod") — the reference rate and latency;
//  2. through the ingress over HTTP (Host header routing), same connections and duration;
//  3. through the ingress over HTTPS (TLS terminated by the proxy, default certificate);
//  4. a real pod (busybox httpd, one connection per request) directly (a /32 route to its IP via the
//     node) and through the ingress.
// Goals (issue 12): ingress ≥ 70 % of the direct rate, p99 < 5 ms added.
// Needs root, nft, containerd, runc, the CNI bridge plugin, /bin/busybox and wrk. Run after `npm run build`:
//   node --import tsx bench/net-ingress.ts [--duration 10] [--connections 16] [--threads 2]
// (BENCH_JIT=1: the agent without bin/skiff's --jitless.)
// Everything it starts is torn down, even on failure or Ctrl-C (BENCH_KEEP=1 keeps the agent's log in /tmp).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpClient } from '../src/client/http.js';
import { Resources } from '../src/client/types.js';
import { teardownRuntime } from '../src/agent/runtime/teardown.js';
import { writeBusyboxImage } from '../test/helpers/images.js';
import { createHost, removeHost, sh, startHostAgent } from './lib/netns-host.js';
import { startBenchServer, sleep, stopProcess, type BenchServer } from './lib/server.js';

const NODE = 'ingress-bench';
const GOALS = { ratio: 0.7, addedP99Ms: 5 };
const run = process.pid % 1000;
const host = { netns: `sking${run}b`, hostIf: `skingb${run}`, hostIp: '10.197.1.1', ip: '10.197.1.2' };
const BACKEND_PORT = 18480 + (process.pid % 100);

interface Options { duration: number; connections: number; threads: number }

function options(argv: string[]): Options {
  const o: Options = { duration: 10, connections: 16, threads: 2 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], Number(argv[i + 1])];
    if (flag === '--duration' && v > 0 && v <= 600) o.duration = v;
    else if (flag === '--connections' && v > 0 && v <= 10000) o.connections = v;
    else if (flag === '--threads' && v > 0 && v <= 64) o.threads = v;
    else throw new Error(`unknown or invalid option ${flag} ${argv[i + 1] ?? ''}`);
  }
  return o;
}


const startAgent = (server: BenchServer, dir: string, token: string): ChildProcess => startHostAgent(host, server, dir, token, NODE);

interface WrkResult { rps: number; p50: number; p99: number; errors: number; requests: number }

/** Runs wrk with latency percentiles; milliseconds. */
function wrk(url: string, o: Options, headers: string[] = []): WrkResult {
  const r = sh(['wrk', '-t', String(o.threads), '-c', String(o.connections), '-d', `${o.duration}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url]);
  if (r.status !== 0) throw new Error(`wrk ${url}: ${r.stderr || r.stdout}`);
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(r.stdout);
    if (!m) throw new Error(`wrk output without ${label}%:\n${r.stdout}`);
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0),
    p50: ms('50'), p99: ms('99'),
    errors: Number(errs?.[1] ?? 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespace, nftables, containerd)');
  if (!existsSync('/usr/bin/wrk')) throw new Error('needs wrk (Debian package wrk)');
  let server: BenchServer | undefined;
  let agent: ChildProcess | undefined;
  let client: HttpClient | undefined;
  const dir = mkdtempSync('/tmp/skiff-ingb-');
  let backend: ChildProcess | undefined;
  let podRoute = '';
  const cleanup = async () => {
    if (podRoute) sh(['ip', 'route', 'del', podRoute]);
    await stopProcess(backend);
    await stopProcess(agent);
    client?.close();
    if (process.env.BENCH_KEEP) spawnSync('cp', [join(dir, 'agent.log'), `/tmp/net-ingress-agent-${process.pid}.log`]);
    await teardownRuntime({ dataDir: dir, removeDataDir: true }).catch(() => undefined);
    removeHost(host);
    await server?.stop();
  };
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  try {
    createHost(host);
    // The backend in a process of its own (curl and wrk run synchronously here): 2 bytes per answer,
    // keep-alive, as a small web pod would answer.
    backend = spawn(process.execPath, ['-e', `const s = require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }); r.end('ok'); });
s.keepAliveTimeout = 60000; s.listen(${BACKEND_PORT}, '${host.hostIp}');`], { stdio: 'inherit' });
    mkdirSync(join(dir, 'agent', 'images'), { recursive: true });
    writeBusyboxImage(join(dir, 'agent', 'images'), 'busybox.tar');
    server = await startBenchServer(['--bind-address', '0.0.0.0', '--tls-san', host.hostIp]);
    const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
    client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'skiff-bench' });
    agent = startAgent(server, dir, token);
    await client.create(Resources.services, 'default', {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'bench', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80, targetPort: BACKEND_PORT }] },
    });
    await client.create(Resources.endpointSlices, 'default', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'bench-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'bench' } },
      addressType: 'IPv4', ports: [{ name: 'http', port: BACKEND_PORT, protocol: 'TCP' }],
      endpoints: [{ addresses: [host.hostIp], conditions: { ready: true } }],
    });
    await client.create({ group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' }, 'default', {
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'bench', namespace: 'default' },
      spec: { rules: [{ host: 'bench.local', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'bench', port: { number: 80 } } } }] } }] },
    });
    // A real pod too (busybox httpd, which closes every connection: what a simple web pod costs).
    await client.create(Resources.deployments, 'default', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'pod-bench', namespace: 'default' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'pod-bench' } }, template: { metadata: { labels: { app: 'pod-bench' } }, spec: {
        containers: [{ name: 'web', image: 'skiff.local/busybox:test', command: ['sh', '-c', 'mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www'] }],
      } } },
    });
    await client.create(Resources.services, 'default', {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'pod-bench', namespace: 'default' }, spec: { selector: { app: 'pod-bench' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    await client.patch({ group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' }, 'default', 'bench', 'json',
      [{ op: 'add', path: '/spec/rules/-', value: { host: 'pod.local', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'pod-bench', port: { number: 80 } } } }] } } }]);
    const deadline = Date.now() + 180_000;
    let podIp = '';
    for (;;) {
      const r = sh(['curl', '-s', '-m', '2', '-H', 'Host: bench.local', `http://${host.ip}/`]);
      const pods = (await client.list<any>(Resources.pods, 'default', { labelSelector: 'app=pod-bench' })).items;
      podIp = pods[0]?.status?.podIP ?? '';
      const viaPod = sh(['curl', '-s', '-m', '2', '-H', 'Host: pod.local', `http://${host.ip}/`]);
      if (r.stdout === 'ok' && podIp && viaPod.stdout.trim() === 'ok') break;
      if (Date.now() > deadline) throw new Error(`the ingress did not route within 180 s (last answer: ${r.stdout.slice(0, 200)}); BENCH_KEEP=1 keeps the agent log`);
      await sleep(500);
    }
    // A short warm-up (JIT, keep-alive pools), then the measured runs.
    wrk(`http://${host.ip}/`, { ...o, duration: 2 }, ['Host: bench.local']);
    const direct = wrk(`http://${host.hostIp}:${BACKEND_PORT}/`, o);
    const viaHttp = wrk(`http://${host.ip}/`, o, ['Host: bench.local']);
    const viaHttps = wrk(`https://${host.ip}/`, o, ['Host: bench.local']);
    podRoute = `${podIp}/32`;
    sh(['ip', 'route', 'add', podRoute, 'via', host.ip]);
    const podDirect = wrk(`http://${podIp}:8080/`, o);
    const podVia = wrk(`http://${host.ip}/`, o, ['Host: pod.local']);

    const line = (name: string, r: WrkResult) => console.log(`  ${name.padEnd(24)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   (${r.requests} requests, ${r.errors} errors)`);
    console.log(`ingress proxy throughput (wrk -t${o.threads} -c${o.connections} -d${o.duration}s, agent in a network namespace${process.env.BENCH_JIT ? ' with the JIT' : ' (--jitless, as bin/skiff runs it)'}, backend: keep-alive Node HTTP server)`);
    line('direct to the backend', direct);
    line('through ingress (HTTP)', viaHttp);
    line('through ingress (HTTPS)', viaHttps);
    line('busybox pod directly', podDirect);
    line('busybox pod via ingress', podVia);
    const ratio = viaHttp.rps / direct.rps;
    const added = viaHttp.p99 - direct.p99;
    const pass = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(`summary: ingress ${viaHttp.rps.toFixed(0)} req/s = ${(ratio * 100).toFixed(0)} % of direct ${direct.rps.toFixed(0)} req/s (goal ≥ ${GOALS.ratio * 100} %: ${pass(ratio >= GOALS.ratio)}); p99 ${viaHttp.p99.toFixed(2)} ms vs ${direct.p99.toFixed(2)} ms, +${added.toFixed(2)} ms (goal < ${GOALS.addedP99Ms} ms: ${pass(added < GOALS.addedP99Ms)}); HTTPS ${viaHttps.rps.toFixed(0)} req/s, p99 ${viaHttps.p99.toFixed(2)} ms; busybox pod: ingress ${podVia.rps.toFixed(0)} req/s = ${(podVia.rps / podDirect.rps * 100).toFixed(0)} % of direct ${podDirect.rps.toFixed(0)}, p99 +${(podVia.p99 - podDirect.p99).toFixed(2)} ms`);
  } finally {
    await cleanup();
  }
}

main().catch((err) => { console.error(err instanceof Error ? err.stack : err); process.exit(1); });
