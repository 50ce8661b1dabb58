// Node-local cluster DNS throughput and latency (issue 9's DNS benchmark) with Debian's dnsperf
// against a loopback-bound instance of the agent's DNS server started by this bench (bench/lib/
// dns-instance.ts: the agent's records, cache, forwarder and server modules, 1,000 synthetic Services
// of which 100 headless with 10 endpoints each), once with the node flags bin/skiff gives an agent
// (--jitless ...) and once with V8's defaults. Debian's dnsmasq on loopback is the upstream for the
// external names, which are asked once to fill the cache and then measured as cache hits.
// Per phase: queries/s at full load (dnsperf, 4 clients, 64 outstanding), the server's CPU seconds over
// that run (so qps per core = queries / CPU seconds, whatever else the shared machine runs), and the
// latency p50/p99 from dnsperf's per-query lines (-v) at a fixed rate below saturation.
//   node --import tsx bench/net-dns.ts [--seconds 10] [--rate 5000]
// Needs dnsperf and dnsmasq (Debian). Everything it starts is stopped, also on failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, freePort, rssMb, sleep, stopProcess } from './lib/server.js';
import { percentile } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const AGENT_NODE_FLAGS = ['--max-semi-space-size=1', '--jitless', '--optimize-for-size'];   // as bin/skiff runs `agent`
const GOALS = { qpsPerCore: 30_000, p99Ms: 2 };

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
const SECONDS = Number(arg('seconds', '10'));
const RATE = Number(arg('rate', '5000'));

for (const bin of ['/usr/bin/dnsperf', '/usr/sbin/dnsmasq']) if (!existsSync(bin)) throw new Error(`bench/net-dns.ts needs ${bin} (Debian's ${bin.split('/').pop()})`);

const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-dns-'));
const procs: ChildProcess[] = [];
const cleanup = async () => { for (const p of procs) await stopProcess(p); rmSync(dir, { recursive: true, force: true }); };
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

interface Phase { mode: string; names: string; qps: number; qpsPerCore: number; cpuS: number; lost: number; p50Ms: number; p99Ms: number; rateQps: number }

function writeQueries(): { cluster: string; external: string } {
  const cluster: string[] = [];
  for (let i = 0; i < 1000; i++) cluster.push(`svc-${i}.bench.svc.cluster.local A`);
  for (let i = 0; i < 100; i++) cluster.push(`_http._tcp.svc-${i * 10}.bench.svc.cluster.local SRV`);
  for (let i = 0; i < 100; i++) cluster.push(`svc-${i * 10 + 9}-3.svc-${i * 10 + 9}.bench.svc.cluster.local A`);
  for (let i = 0; i < 100; i++) cluster.push(`nope-${i}.bench.svc.cluster.local A`);                   // NXDOMAIN
  const external = Array.from({ length: 500 }, (_, i) => `host-${i}.ext.test A`);
  writeFileSync(join(dir, 'cluster.txt'), cluster.join('\n') + '\n');
  writeFileSync(join(dir, 'external.txt'), external.join('\n') + '\n');
  return { cluster: join(dir, 'cluster.txt'), external: join(dir, 'external.txt') };
}

async function startDnsmasq(): Promise<number> {
  const port = await freePort();
  const p = spawn('/usr/sbin/dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--address=/ext.test/192.0.2.7',
    '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${port}`, '--local-ttl=3600', `--pid-file=${join(dir, 'dnsmasq.pid')}`], { stdio: 'ignore' });
  procs.push(p);
  await sleep(300);
  return port;
}

async function startInstance(nodeFlags: string[], upstreamPort: number): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(ROOT, 'bench/lib/dns-instance.ts'), '--services', '1000', '--upstream', `127.0.0.1:${upstreamPort}`],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c) => { stderr += c; });
  procs.push(proc);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c) => { out += c; const m = out.match(/"port":(\d+)/); if (m) resolve(Number(m[1])); });
    proc.once('exit', () => reject(new Error(`the DNS instance exited before listening: ${stderr}`)));
  });
  return { proc, port };
}

function dnsperf(port: number, file: string, extra: string[]): string {
  const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, ...extra], { encoding: 'utf8', maxBuffer: 512 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`dnsperf failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function phase(mode: string, names: string, pid: number, port: number, file: string): Promise<Phase> {
  const cpu0 = cpuSeconds(pid);
  const full = dnsperf(port, file, ['-l', String(SECONDS), '-c', '4', '-q', '64']);
  const cpuS = cpuSeconds(pid) - cpu0;
  const completed = Number(full.match(/Queries completed:\s+(\d+)/)?.[1] ?? 0);
  const lost = Number(full.match(/Queries lost:\s+(\d+)/)?.[1] ?? 0);
  const qps = Number(full.match(/Queries per second:\s+([\d.]+)/)?.[1] ?? 0);
  // Latency at a fixed rate below saturation: every answer's latency from the verbose lines.
  const paced = dnsperf(port, file, ['-l', '5', '-c', '4', '-Q', String(RATE), '-v']);
  const lat = [...paced.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  return { mode, names, qps, qpsPerCore: cpuS > 0 ? completed / cpuS : NaN, cpuS, lost, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), rateQps: RATE };
}

try {
  const files = writeQueries();
  const upstream = await startDnsmasq();
  const results: Phase[] = [];
  for (const [mode, flags] of [['agent flags (--jitless)', AGENT_NODE_FLAGS], ['V8 defaults (JIT)', []]] as const) {
    const inst = await startInstance([...flags], upstream);
    // Warm up: code paths, and every external name once through dnsmasq into the cache.
    dnsperf(inst.port, files.cluster, ['-n', '2']);
    dnsperf(inst.port, files.external, ['-n', '1', '-c', '1', '-q', '20']);
    results.push(await phase(mode, 'cluster names', inst.proc.pid!, inst.port, files.cluster));
    results.push(await phase(mode, 'cached external names', inst.proc.pid!, inst.port, files.external));
    const rss = rssMb(inst.proc.pid!);
    inst.proc.stdin!.write('stats\n');
    await sleep(200);
    console.log(`# ${mode}: instance RSS ${rss.toFixed(0)} MB`);
    inst.proc.stdin!.end();
    await stopProcess(inst.proc);
  }
  console.log(`\n# ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (p99 on a busy machine is mostly waiting for a CPU)`);
  console.log('mode                     names                   qps(load)  qps/core   cpu s  lost  p50 ms  p99 ms (at rate)');
  for (const r of results) {
    console.log(`${r.mode.padEnd(24)} ${r.names.padEnd(22)} ${r.qps.toFixed(0).padStart(9)} ${r.qpsPerCore.toFixed(0).padStart(9)} ${r.cpuS.toFixed(1).padStart(7)} ${String(r.lost).padStart(5)} ${r.p50Ms.toFixed(3).padStart(7)} ${r.p99Ms.toFixed(3).padStart(7)} (${r.rateQps}/s)`);
  }
  const agent = results.filter((r) => r.mode.startsWith('agent'));
  const worst = { perCore: Math.min(...agent.map((r) => r.qpsPerCore)), p99: Math.max(...agent.map((r) => r.p99Ms)) };
  console.log(`\nsummary: node-local DNS (agent flags) ${agent.map((r) => `${r.names} ${(r.qpsPerCore / 1000).toFixed(1)}k qps/core p99 ${r.p99Ms.toFixed(2)} ms`).join('; ')}`
    + ` — goal ≥ ${GOALS.qpsPerCore / 1000}k qps/core, p99 < ${GOALS.p99Ms} ms: ${worst.perCore >= GOALS.qpsPerCore && worst.p99 < GOALS.p99Ms ? 'met' : 'NOT met'}`);
} finally {
  await cleanup();
}
