// Fleet benchmark (issue 17), first cut: a manager (`skiff server`) and N hollow clusters (in this
// process: the same SiteConnection real sites use, each with its own certificate and tunnel) that
// register, connect and heartbeat. Reports the time to register and to see every Cluster Ready, then
// over an idle window: the manager's RSS and CPU, the heartbeat traffic per cluster (WebSocket bytes
// both ways, as the sites' TLS sockets count them: heartbeats, pings, pongs, credit; TLS records and
// TCP/IP headers come on top, see docs/benchmarks.md), and the manager's datastore writes per second
// (heartbeats alone write nothing; lastSeen is refreshed once a minute per cluster).
// Then bundles: the time for a Bundle (one ConfigMap) to be applied and reported Ready on every
// cluster, first deployment and a change, unrestricted and with 10 automatic partitions (each
// partition waits for the previous one's Ready reports: the health gate's cost), with the manager's
// CPU seconds spent on each, the status aggregation lag: from the last cluster's status line
// (hollow clusters answer a deployment at once) to the Bundle's summary counting every cluster
// Ready, and when every Cluster's Bundles-Ready caught up (with the Cluster status writes that took).
// Last, `--offline N` sites stop: the time until their Clusters turn Offline (the grace) and
// until the Bundle's summary counts them offline (the aggregation lag of a Cluster change).
// Run after `npm run build`:
//   node --import tsx bench/fleet.ts [--clusters 1000] [--heartbeat 15] [--idle 60] [--concurrency 32] [--last-seen-interval 300]
//     [--bundles 1] [--offline 10] [--offline-grace 40]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { BUNDLES, CLUSTERS, FLEET_API_VERSION, type Bundle, type Cluster } from '../src/fleet/api.js';
import { HollowClusters } from '../src/fleet/hollow-clusters.js';
import { setLogLevel } from '../src/util/log.js';
import { cpuSeconds, rssMb, sleep, startBenchServer } from './lib/server.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface Options { clusters: number; heartbeatS: number; idleS: number; concurrency: number; lastSeenS: number; bundles: number; offline: number; offlineGraceS: number }

function options(argv: string[]): Options {
  const o: Options = { clusters: 1000, heartbeatS: 15, idleS: 60, concurrency: 32, lastSeenS: 300, bundles: 1, offline: 10, offlineGraceS: 40 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], Number(argv[i + 1])];
    if (flag === '--bundles' && v === 0) { o.bundles = 0; continue; }
    if (flag === '--offline' && v === 0) { o.offline = 0; continue; }
    if (!Number.isFinite(v) || v <= 0) throw new Error(`invalid value for ${flag}: ${argv[i + 1]}`);
    if (flag === '--clusters') o.clusters = v;
    else if (flag === '--heartbeat') o.heartbeatS = v;
    else if (flag === '--idle') o.idleS = v;
    else if (flag === '--concurrency') o.concurrency = v;
    else if (flag === '--last-seen-interval') o.lastSeenS = v;
    else if (flag === '--offline') o.offline = Math.min(v, 1e9);
    else if (flag === '--offline-grace') o.offlineGraceS = v;
    else throw new Error(`unknown option ${flag}`);
  }
  return o;
}

async function main(): Promise<void> {
  setLogLevel('warn');
  const o = options(process.argv.slice(2));
  // Every hollow site dials from 127.0.0.1: lift the per-address connection cap (1,024), as a
  // manager whose sites share one NAT address must too.
  process.env.SKIFF_CONNECTION_LIMITS ??= JSON.stringify({ maxConnectionsPerAddress: 100_000 });
  const server = await startBenchServer(['--log-level', 'warn', '--fleet-last-seen-interval', String(o.lastSeenS), '--fleet-offline-grace', String(o.offlineGraceS)]);
  const pid = server.proc.pid!;
  const client = HttpClient.fromKubeconfig(server.kubeconfigPath, { timeoutMs: 120_000 });
  let hollow: HollowClusters | undefined;
  try {
    const t = spawnSync(join(ROOT, 'bin', 'skiff'), ['fleet', 'token', '--kubeconfig', server.kubeconfigPath], { encoding: 'utf8' });
    if (t.status !== 0) throw new Error(`skiff fleet token: ${t.stderr}`);
    // The manager's own idle cost before any site (its control loops, informers, timers): the
    // fleet's share is the difference.
    await sleep(5000);
    const b0 = cpuSeconds(pid);
    const bw0 = performance.now();
    await sleep(Math.min(30, o.idleS) * 1000);
    const baseCpu = (cpuSeconds(pid) - b0) / ((performance.now() - bw0) / 1000) * 100;
    const baseRss = rssMb(pid);
    hollow = new HollowClusters({
      server: `https://127.0.0.1:${server.port}`, token: t.stdout.trim(), count: o.clusters, namePrefix: 'bench-',
      labels: { bench: 'fleet' }, nodes: 3, heartbeatMs: o.heartbeatS * 1000, concurrency: o.concurrency,
    });
    const t0 = performance.now();
    await hollow.start();
    const connectedS = (performance.now() - t0) / 1000;
    let ready = 0;
    for (;;) {
      const list = await client.list<Cluster>(CLUSTERS);
      ready = list.items.filter((c) => c.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True').length;
      if (ready >= o.clusters) break;
      if (performance.now() - t0 > 900_000) throw new Error(`only ${ready}/${o.clusters} Ready after 900 s`);
      await sleep(1000);
    }
    const readyS = (performance.now() - t0) / 1000;
    // Let the registration burst settle (its first lastSeen refreshes come a minute later, spread).
    await sleep(5000);
    const rv0 = Number((await client.list(CLUSTERS, undefined, { limit: 1 })).resourceVersion);
    const cpu0 = cpuSeconds(pid);
    const s0 = hollow.stats();
    const w0 = performance.now();
    await sleep(o.idleS * 1000);
    const windowS = (performance.now() - w0) / 1000;
    const cpu = (cpuSeconds(pid) - cpu0) / windowS * 100;
    const s1 = hollow.stats();
    const rv1 = Number((await client.list(CLUSTERS, undefined, { limit: 1 })).resourceVersion);
    const bytesPerS = ((s1.written - s0.written) + (s1.read - s0.read)) / windowS / o.clusters;
    const upPerS = (s1.written - s0.written) / windowS / o.clusters;
    const beats = (s1.heartbeats - s0.heartbeats) / o.clusters;
    const rss = rssMb(pid);
    const line = `fleet: clusters=${o.clusters} heartbeat=${o.heartbeatS}s lastSeenInterval=${o.lastSeenS}s connected=${connectedS.toFixed(1)}s allReady=${readyS.toFixed(1)}s `
      + `managerRSS=${Math.round(rss)}MB (+${Math.round(rss - baseRss)}MB) managerCPU=${cpu.toFixed(1)}% idle(${Math.round(windowS)}s; ${baseCpu.toFixed(1)}% with no site) `
      + `ws=${bytesPerS.toFixed(1)}B/s/cluster (${(bytesPerS * 8).toFixed(0)}bit/s; up ${upPerS.toFixed(1)}B/s) `
      + `bytes/heartbeat≈${beats > 0 ? ((s1.written - s0.written) / o.clusters / beats).toFixed(0) : '-'} `
      + `writes=${((rv1 - rv0) / windowS).toFixed(1)}/s hollowRSS=${Math.round(process.memoryUsage().rss / 2 ** 20)}MB`;
    process.stdout.write(line + '\n');
    if (o.bundles) await bundlePhases(client, pid, hollow);
    if (o.bundles && o.offline) await offlinePhase(client, hollow, Math.min(o.offline, o.clusters));
  } finally {
    hollow?.stop();
    client.close();
    await server.stop();
  }
}

/** Bundle deployment to every cluster: first, changed, and changed with 10 partitions. */
async function bundlePhases(client: HttpClient, pid: number, hollow: HollowClusters): Promise<void> {
  const n = hollow.sites.length;
  const cm = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bench}\ndata: {version: "${v}", site: "\${ .ClusterName }"}\n`;
  const body = (v: string, strategy?: Record<string, unknown>) => ({
    apiVersion: FLEET_API_VERSION, kind: 'Bundle', metadata: { name: 'bench', namespace: 'default' },
    spec: { resources: [{ name: 'cm.yaml', content: cm(v) }], targets: [{ clusterSelector: {} }], ...(strategy ? { rolloutStrategy: strategy } : {}) },
  });
  const phase = async (label: string, v: string, strategy?: Record<string, unknown>) => {
    const cur = await client.get<Bundle>(BUNDLES, 'default', 'bench');
    // Each Cluster's Bundles-Ready (status.summary) follows its BundleDeployments: count its writes.
    const clusterWrites = new Map<string, number>();
    const watch = client.watch<Cluster>(CLUSTERS, undefined, (await client.list(CLUSTERS, undefined, { limit: 1 })).resourceVersion,
      (e) => { if (e.type === 'MODIFIED') clusterWrites.set(e.object.metadata.name!, (clusterWrites.get(e.object.metadata.name!) ?? 0) + 1); });
    const cpu0 = cpuSeconds(pid);
    const received0 = hollow.deploysReceived;
    // When the last cluster got the new version (and, being hollow, wrote its status line at once).
    let lastReport = 0;
    const reportPoll = setInterval(() => { if (!lastReport && hollow.deploysReceived - received0 >= n) lastReport = performance.now(); }, 5);
    const t0 = performance.now();
    const obj = cur ? { ...body(v, strategy), metadata: { ...cur.metadata } } : body(v, strategy);
    const written = cur ? await client.update<Bundle>(BUNDLES, 'default', obj) : await client.create<Bundle>(BUNDLES, 'default', obj);
    try {
      for (;;) {
        const b = await client.get<Bundle>(BUNDLES, 'default', 'bench');
        const s = b?.status;
        if (s?.observedGeneration === written.metadata.generation && s?.summary?.ready === n && s.summary.desiredReady === n) break;
        if (performance.now() - t0 > 600_000) throw new Error(`${label}: ${JSON.stringify(s?.summary)} after 600 s`);
        await sleep(100);
      }
    } finally { clearInterval(reportPoll); }
    const end = performance.now();
    const s = (end - t0) / 1000;
    const lag = lastReport ? `${((end - lastReport) / 1000).toFixed(1)}s` : '-';
    // Until every Cluster says 1/1 bundles ready.
    for (;;) {
      const list = await client.list<Cluster>(CLUSTERS);
      if (list.items.length >= n && list.items.every((c) => c.status?.display?.readyBundles === '1/1')) break;
      if (performance.now() - t0 > 600_000) throw new Error(`${label}: Clusters' Bundles-Ready not 1/1 after 600 s`);
      await sleep(500);
    }
    const sc = (performance.now() - t0) / 1000;
    await sleep(2000);   // the writes still in flight
    watch.stop();
    const writes = [...clusterWrites.values()];
    process.stdout.write(`fleet-bundle: clusters=${n} ${label}: all applied and Ready in ${s.toFixed(1)}s (aggregation lag after the last report ${lag}), manager CPU ${(cpuSeconds(pid) - cpu0).toFixed(1)}s; `
      + `every Cluster's Bundles-Ready 1/1 at ${sc.toFixed(1)}s, Cluster writes ${writes.reduce((a, b) => a + b, 0)} (max ${Math.max(0, ...writes)} per cluster)\n`);
  };
  await phase('first deployment', '1');
  await phase('change, unrestricted', '2');
  await phase('change, 10 partitions', '3', { autoPartitionSize: '10%' });
}

/** `k` sites stop: how long until their Clusters are Offline, and until the Bundle's summary says so. */
async function offlinePhase(client: HttpClient, hollow: HollowClusters, k: number): Promise<void> {
  // The stopped sites are bench-0 .. bench-(k-1) (sites[i] is the i-th name); only they are listed.
  const labelSelector = `fleet.skiff.io/hollow-index in (${Array.from({ length: k }, (_, i) => i).join(',')})`;
  const t0 = performance.now();
  hollow.stopRange(0, k);
  let clustersOffline = 0;
  for (;;) {
    const now = performance.now();
    if (!clustersOffline) {
      const list = await client.list<Cluster>(CLUSTERS, undefined, { labelSelector });
      const off = list.items.filter((c) => c.status?.conditions?.find((x) => x.type === 'Ready')?.status !== 'True').length;
      if (off === k) clustersOffline = now;
    }
    const b = await client.get<Bundle>(BUNDLES, 'default', 'bench');
    if (b?.status?.summary?.offline === k) {
      const end = performance.now();
      const since = clustersOffline || end;
      process.stdout.write(`fleet-offline: ${k} sites stopped: Clusters Offline after ${((since - t0) / 1000).toFixed(1)}s, `
        + `Bundle summary offline=${k} after ${((end - t0) / 1000).toFixed(1)}s (aggregation lag ≤ ${((end - since) / 1000).toFixed(1)}s)\n`);
      return;
    }
    if (now - t0 > 300_000) throw new Error(`offline: ${JSON.stringify(b?.status?.summary)} after 300 s`);
    await sleep(100);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench/fleet: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
