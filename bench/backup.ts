// Continuous backup benchmark (issue 11): what `--backup-stream` costs in create throughput, and its
// lag (a change acknowledged → durable in the stream directory) at full speed and at a steady
// 1,000 writes/s. Goals: lag < 5 s at 1,000 writes/s, < 10 % of create throughput.
//  1. The storage layer alone (log layer + watch cache on SQLite, no HTTP), 64 clients, with and
//     without the stream; lag percentiles from the stream's own accounting (per flush, the oldest
//     change it carried: the worst lag of that flush).
//  2. The same paced at BENCH_RATE writes/s (default 1,000).
//  3. Through the full API (`skiff server`, TLS, admission), 64 clients, with and without
//     `--backup-stream`. Needs `npm run build`.
// The stream directory is on the same disk here (the machine has one); on a real box it is another
// disk or a network mount, whose fsync time adds to the lag. Run: node --import tsx bench/backup.ts
// (BENCH_PHASE_MS=4000 by default; the full run is BENCH_PHASE_MS=30000).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../test/helpers/api-client.js';
import { startBenchServer } from './lib/server.js';
import { driveFor, percentile, type Rate } from './lib/stats.js';
import { CacheStore } from '../src/storage/cache.js';
import { SqliteBackend } from '../src/storage/sqlite.js';
import { BackupStream } from '../src/server/backup-stream.js';

const CLIENTS = 64;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 4000);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const WARMUP_MS = 1000;
const pad = 'x'.repeat(200);
const fmt = (r: Rate) => `${Math.round(r.perSec)}/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  (${r.n} writes${r.errors ? `, ${r.errors} errors` : ''})`;

interface Lag { p50: number; p99: number; max: number; flushes: number }
function lagOf(s: BackupStream): Lag {
  const sorted = [...s.stats.lagSamples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: s.stats.maxLagMs, flushes: s.stats.flushes };
}
const fmtLag = (l: Lag) => `lag p50 ${l.p50.toFixed(0)} ms  p99 ${l.p99.toFixed(0)} ms  max ${l.max.toFixed(0)} ms  (${l.flushes} fsynced flushes)`;

async function store(label: string, withStream: boolean, paced: boolean): Promise<{ rate: Rate; lag?: Lag }> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-backup-'));
  const dataDir = join(dir, 'data');
  mkdirSync(join(dataDir, 'server', 'db'), { recursive: true });
  writeFileSync(join(dataDir, 'server', 'token'), 'bench\n');
  const backend = new SqliteBackend(join(dataDir, 'server', 'db', 'state.db'));
  const cache = new CacheStore(backend);
  await cache.start();
  const stream = withStream ? new BackupStream({ dir: join(dir, 'stream'), dataDir, node: 'bench', backend, backendName: 'sqlite', log: () => {} }) : undefined;
  await stream?.start();
  try {
    const create = (w: number, i: number, phase: string) => cache.create(`/core/configmaps/default/${phase}-${w}-${i}`, {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${phase}-${w}-${i}`, namespace: 'default' }, data: { pad },
    }).then(() => true);
    let rate: Rate;
    if (paced) {
      // RATE writes/s in 10 ms ticks, each write on its own (as independent clients would).
      const samples: number[] = [];
      const inFlight: Promise<void>[] = [];
      const t0 = performance.now();
      let sent = 0;
      while (performance.now() - t0 < PHASE_MS) {
        const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
        for (; sent < due; sent++) {
          const s = performance.now();
          const n = sent;
          inFlight.push(create(0, n, 'paced').then(() => { samples.push(performance.now() - s); }));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(inFlight);
      samples.sort((a, b) => a - b);
      rate = { perSec: samples.length / ((performance.now() - t0) / 1000), p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length, errors: 0 };
    } else {
      await driveFor(WARMUP_MS, CLIENTS, (w, i) => create(w, i, 'warm'));
      rate = await driveFor(PHASE_MS, CLIENTS, (w, i) => create(w, i, 'm'));
    }
    await stream?.flush();
    const lag = stream && lagOf(stream);
    console.log(`store creates, ${label}: ${fmt(rate)}${lag ? `  ${fmtLag(lag)}` : ''}`);
    return { rate, lag };
  } finally {
    await stream?.stop();
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function api(label: string, args: string[]): Promise<Rate> {
  const server = await startBenchServer([...args, '--disable-controller-manager', '--disable-snapshots']);
  const client = ApiClient.fromKubeconfig(server.kubeconfigPath, { maxSockets: CLIENTS });
  try {
    const create = async (w: number, i: number, phase: string) => (await client.post('/api/v1/namespaces/default/configmaps', {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${phase}-${w}-${i}` }, data: { pad },
    })).status === 201;
    await driveFor(WARMUP_MS, CLIENTS, (w, i) => create(w, i, 'warm'));
    const rate = await driveFor(PHASE_MS, CLIENTS, (w, i) => create(w, i, 'm'));
    console.log(`API creates, ${label}, ${CLIENTS} clients: ${fmt(rate)}`);
    return rate;
  } finally {
    client.close();
    await server.stop();
  }
}

const cost = (without: Rate, withS: Rate) => `${((1 - withS.perSec / without.perSec) * 100).toFixed(1)} %`;

const s0 = await store('no stream, 64 clients', false, false);
const s1 = await store('--backup-stream, 64 clients', true, false);
const p1 = await store(`--backup-stream, paced ${RATE}/s`, true, true);
const streamDir = mkdtempSync(join(tmpdir(), 'skiff-bench-backup-stream-'));
let a0: Rate;
let a1: Rate;
try {
  a0 = await api('no stream', []);
  a1 = await api('--backup-stream', ['--backup-stream', streamDir]);
} finally {
  rmSync(streamDir, { recursive: true, force: true });
}
console.log(`SUMMARY store cost ${cost(s0.rate, s1.rate)} (lag p99 ${s1.lag!.p99.toFixed(0)} ms, max ${s1.lag!.max.toFixed(0)} ms at full speed); `
  + `paced ${RATE}/s lag p99 ${p1.lag!.p99.toFixed(0)} ms, max ${p1.lag!.max.toFixed(0)} ms; API cost ${cost(a0, a1)} (${Math.round(a0.perSec)} → ${Math.round(a1.perSec)} creates/s)`);
