// What listing a large collection costs the API server (issue 15): an informer's first list, or
// `kubectl get pods -A -o json` without chunking, asks for every pod at once. An API-only server gets
// P pods (about 4 KB each, bound to nodes by name; no control loops run), then L clients list them
// all at the same time, R rounds. Printed per round: the server's peak RSS above what it held before,
// how long the lists took, and the latency of a small GET sent every 10 ms meanwhile (what every other
// client of the server sees during the lists).
//   node --import tsx bench/list-memory.ts [--pods 20000] [--lists 4] [--rounds 3] [--skiff <other checkout>/bin/skiff]
// `--skiff` runs another build's server (e.g. a worktree of an older commit), to compare two builds
// on one machine in one sitting.
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources } from '../src/client/types.js';
import { rssMb, sleep, startBenchServer } from './lib/server.js';
import { intArg } from './lib/args.js';
import { credentialsFromKubeconfig } from '../test/helpers/api-client.js';

if (process.argv.includes('--help')) {
  console.log('node --import tsx bench/list-memory.ts [--pods 20000] [--lists 4] [--rounds 3] [--skiff <path to bin/skiff>]');
  process.exit(0);
}
const pods = intArg('--pods', 20_000);
const lists = intArg('--lists', 4);
const rounds = intArg('--rounds', 3);
const skiffAt = process.argv.indexOf('--skiff');
const bin = skiffAt > 0 ? process.argv[skiffAt + 1] : undefined;

const server = await startBenchServer(['--disable-controller-manager'], { bin });
const client = HttpClient.fromKubeconfig(server.kubeconfigPath, { maxConnections: 32 });
const creds = credentialsFromKubeconfig(server.kubeconfigPath);
// Raw requests rather than ApiClient's: a body is counted as it arrives, never held (274 MB each).
const agent = new https.Agent({ keepAlive: true, maxSockets: lists + 1, ca: creds.ca, cert: creds.cert, key: creds.key });

/** GETs `path`, counting the body's bytes without keeping them; resolves with the byte count. */
function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: server.port, path, agent }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${path}: ${res.statusCode}`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN; };

try {
  let next = 0;
  const t0 = performance.now();
  const pad = 'x'.repeat(3000);
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = next++; i < pods; i = next++) {
      await client.create(Resources.pods, 'default', {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, labels: { app: `app-${i % 100}` }, annotations: { 'bench/pad': pad } },
        spec: { nodeName: `node-${i % 500}`, containers: [{ name: 'c', image: 'registry.local/pause:3.9' }] },
      } as never);
      if ((i + 1) % 5000 === 0) console.log(`${i + 1} pods created`);
    }
  }));
  console.log(`${pods} pods created in ${((performance.now() - t0) / 1000).toFixed(1)} s; server RSS ${rssMb(server.proc.pid!).toFixed(0)} MB`);
  await get('/api/v1/namespaces/default/pods?limit=1');   // warm the connection pool
  const summary: string[] = [];
  for (let r = 1; r <= rounds; r++) {
    await sleep(2000);
    const before = rssMb(server.proc.pid!);
    let peak = before;
    let running = true;
    const sampler = (async () => { while (running) { peak = Math.max(peak, rssMb(server.proc.pid!)); await sleep(20); } })();
    const probes: number[] = [];
    const prober = (async () => {
      while (running) {
        const t = performance.now();
        await get('/api/v1/namespaces/default');
        probes.push(performance.now() - t);
        await sleep(10);
      }
    })();
    const t = performance.now();
    const bytes = await Promise.all(Array.from({ length: lists }, () => get('/api/v1/pods')));
    const listS = (performance.now() - t) / 1000;
    running = false;
    await Promise.all([sampler, prober]);
    const line = `round ${r}: ${lists} lists of ${(bytes[0]! / 1e6).toFixed(0)} MB in ${listS.toFixed(2)} s; server RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MB (+${(peak - before).toFixed(0)}); `
      + `small GET meanwhile p50 ${pct(probes, 50).toFixed(0)} ms p99 ${pct(probes, 99).toFixed(0)} ms max ${Math.max(...probes).toFixed(0)} ms (${probes.length})`;
    console.log(line);
    summary.push(`r${r}: +${(peak - before).toFixed(0)}MB ${listS.toFixed(2)}s probeMax=${Math.max(...probes).toFixed(0)}ms`);
  }
  console.log(`list-memory: pods=${pods} lists=${lists} ${bin ? `skiff=${bin} ` : ''}${summary.join(' ')}`);
} finally {
  agent.destroy();
  await server.stop();
}
