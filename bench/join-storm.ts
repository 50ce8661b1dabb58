// Join storm (issue 11): N hollow nodes join one server at once (one `skiff hollow` process, no
// pacing: --join-concurrency N) while M nodes that joined before keep renewing their Leases and another
// client reads and writes the API. Prints the time until all N are Ready, the server's RSS and thread
// count at their peak, the other client's p50/p99, and whether any already-joined node missed its
// Lease deadline or turned NotReady. Run after `npm run build`:
//   node --import tsx bench/join-storm.ts [--nodes 1000] [--joined 50]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Informer } from '../src/client/informer.js';
import { Resources } from '../src/client/types.js';
import type { KObject } from '../src/api/object.js';
import { setLogLevel } from '../src/util/log.js';
import { MANY_NODES, rssMb, sleep, startBenchServer, stopProcess } from './lib/server.js';
import { percentile } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function options(argv: string[]): { nodes: number; joined: number } {
  const o = { nodes: 1000, joined: 50 };
  for (let i = 0; i < argv.length; i += 2) {
    const v = Number(argv[i + 1]);
    if (argv[i] === '--nodes' && v > 0) o.nodes = v;
    else if (argv[i] === '--joined' && v > 0) o.joined = v;
    else throw new Error(`unknown or invalid option ${argv[i]} ${argv[i + 1] ?? ''}`);
  }
  return o;
}

const threads = (pid: number) => Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/** `skiff hollow` joining `count` nodes named `<prefix>-N`; resolves when it prints that all are ready. */
function hollow(server: { port: number; token: string }, dir: string, prefix: string, count: number, concurrency: number, firstIndex = 0): { proc: ChildProcess; ready: Promise<number> } {
  const t0 = performance.now();
  const fd = openSync(join(dir, `${prefix}.log`), 'a');
  const proc = spawn(process.execPath, ['--max-old-space-size=4096', join(ROOT, 'dist', 'cli', 'main.js'), 'hollow', '--server', `https://127.0.0.1:${server.port}`,
    '--token', server.token, '--count', String(count), '--name-prefix', `${prefix}-`, '--first-index', String(firstIndex), '--data-dir', join(dir, prefix), '--heartbeat-interval', '10',
    '--join-concurrency', String(concurrency), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  let out = '';
  const ready = new Promise<number>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes(`${count} nodes ready`)) resolve(performance.now() - t0); });
    proc.on('exit', (code) => reject(new Error(`skiff hollow ${prefix} exited with ${code}: ${readFileSync(join(dir, `${prefix}.log`), 'utf8').slice(-2000)}`)));
  });
  return { proc, ready };
}

async function main(): Promise<void> {
  setLogLevel('error');
  const o = options(process.argv.slice(2));
  const server = await startBenchServer([...MANY_NODES.args, '--log-level', 'warn'], { env: MANY_NODES.env });
  const dir = mkdtempSync(join(tmpdir(), 'skiff-join-storm-'));
  const procs: ChildProcess[] = [];
  const client = HttpClient.fromKubeconfig(server.kubeconfigPath, { userAgent: 'join-storm-bench', timeoutMs: 60_000 });
  const informers: Informer<KObject>[] = [];
  try {
    const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
    const pid = server.proc.pid!;
    const idle = { rss: rssMb(pid), threads: threads(pid) };
    console.log(`server idle: RSS ${idle.rss.toFixed(0)} MB, ${idle.threads} threads`);

    // The nodes that are already there: their Leases must keep being renewed through the storm.
    const before = hollow({ port: server.port, token }, dir, 'joined', o.joined, 8);
    procs.push(before.proc);
    await before.ready;
    const nodes = new Informer<KObject>({ client, resource: Resources.nodes });
    const leases = new Informer<KObject>({ client, resource: Resources.leases, namespace: 'kube-node-lease' });
    informers.push(nodes, leases);
    const notReady = new Set<string>();
    nodes.addHandlers({ onUpdate: (_o, n) => {
      const ready = ((n as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? []).find((c) => c.type === 'Ready');
      if (ready && ready.status !== 'True') notReady.add(String(n.metadata.name));
    } });
    // The longest gap between two renewals of an already-joined node's Lease (its duration is 40 s).
    const lastRenew = new Map<string, number>();
    let longestGapMs = 0;
    leases.addHandlers({ onUpdate: (_o, l) => {
      const name = String(l.metadata.name);
      if (!name.startsWith('joined-')) return;
      const now = performance.now();
      const prev = lastRenew.get(name);
      if (prev !== undefined) longestGapMs = Math.max(longestGapMs, now - prev);
      lastRenew.set(name, now);
    } });
    for (const i of informers) i.start();
    await Promise.all(informers.map((i) => i.waitForSync(60_000)));

    // The storm, with another client reading and writing throughout.
    let peakRss = 0;
    let peakThreads = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try { peakRss = Math.max(peakRss, rssMb(pid)); peakThreads = Math.max(peakThreads, threads(pid)); } catch { /* gone */ }
        await sleep(100);
      }
    })();
    const latencies: number[] = [];
    let errors = 0;
    let probing = true;
    const probe = (async () => {
      for (let i = 0; probing; i++) {
        const t = performance.now();
        try {
          if (i % 2) await client.list(Resources.configMaps, 'default');
          else await client.create(Resources.configMaps, 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `probe-${i}` }, data: { i: String(i) } });
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
        await sleep(50);
      }
    })();
    const storm = hollow({ port: server.port, token }, dir, 'storm', o.nodes, o.nodes, o.joined);
    procs.push(storm.proc);
    const allReadyMs = await storm.ready;
    // Every node Ready as the server sees it.
    const readyAt = performance.now();
    for (;;) {
      const ready = nodes.list().filter((n) => ((n as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [])
        .some((c) => c.type === 'Ready' && c.status === 'True')).length;
      if (ready >= o.nodes + o.joined) break;
      if (performance.now() - readyAt > 300_000) throw new Error(`only ${ready} of ${o.nodes + o.joined} nodes Ready`);
      await sleep(200);
    }
    // A little more of the already-joined nodes' renewals after the storm.
    await sleep(15_000);
    probing = false;
    sampling = false;
    await Promise.all([probe, sampler]);
    latencies.sort((a, b) => a - b);
    const after = rssMb(pid);
    console.log(`join storm: ${o.nodes} nodes joining at once, ${o.joined} joined before`);
    console.log(`  all ${o.nodes} Ready (hollow's count) after ${(allReadyMs / 1000).toFixed(1)} s`);
    console.log(`  server RSS idle ${idle.rss.toFixed(0)} MB, peak ${peakRss.toFixed(0)} MB, after ${after.toFixed(0)} MB; threads idle ${idle.threads}, peak ${peakThreads}`);
    console.log(`  other client (create/list ConfigMaps, every 50 ms): ${latencies.length} requests, p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms, errors ${errors}`);
    console.log(`  already-joined nodes: longest Lease renewal gap ${(longestGapMs / 1000).toFixed(1)} s (renew every 10 s, lease 40 s), NotReady seen: ${notReady.size}`);
    console.log(`join-storm: nodes=${o.nodes} allReady=${(allReadyMs / 1000).toFixed(1)}s peakRSS=${peakRss.toFixed(0)}MB peakThreads=${peakThreads} p99=${percentile(latencies, 99).toFixed(0)}ms errors=${errors} leaseGap=${(longestGapMs / 1000).toFixed(1)}s notReady=${notReady.size}`);
  } finally {
    await Promise.all(informers.map((i) => i.stop()));
    client.close();
    for (const p of procs) await stopProcess(p);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
