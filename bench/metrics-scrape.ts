// What one Prometheus scrape of the process metrics costs the event loop with many open
// descriptors (a server with 5,000 nodes holds over 10,000 sockets): the synchronous part of
// `registry.metrics()` (until it yields) and the whole scrape, for prom-client's own default metrics
// against skiff's (src/util/process-metrics.ts, which counts descriptors on libuv's thread pool).
// Both are measured in one run, alternating. Linux only (/proc/self/fd).
//   node --import tsx bench/metrics-scrape.ts [--fds 10000] [--rounds 20]
import { closeSync, openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { collectProcessMetrics } from '../src/util/process-metrics.js';
import { percentile } from './lib/stats.js';

function parseArgs(argv: string[]): { fds: number; rounds: number } {
  const o = { fds: 10_000, rounds: 20 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      console.log('usage: node --import tsx bench/metrics-scrape.ts [--fds 10000] [--rounds 20]');
      process.exit(0);
    }
    const n = Number(argv[++i]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${argv[i]}`);
    if (flag === '--fds') o.fds = n;
    else if (flag === '--rounds') o.rounds = n;
    else throw new Error(`unknown option ${flag}`);
  }
  return o;
}

/** The scrape's synchronous first stretch (what blocks the loop before its first await) and its total, in ms. */
async function scrape(r: Registry): Promise<{ sync: number; total: number }> {
  const t0 = performance.now();
  let sync = -1;
  const pending = r.metrics();
  sync = performance.now() - t0;
  await pending;
  return { sync, total: performance.now() - t0 };
}

/** The event loop's longest stall while `fn` runs, in ms (a 1 ms timer that notes how late it fires). */
async function longestStall(fn: () => Promise<unknown>): Promise<number> {
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last - 1); last = now; }, 1);
  await new Promise((r) => setTimeout(r, 5));
  last = performance.now();
  await fn();
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(timer);
  return worst;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (process.platform !== 'linux') throw new Error('Linux only: the descriptors are counted in /proc/self/fd');
  const fds = Array.from({ length: o.fds }, () => openSync('/dev/null', 'r'));
  try {
    const prom = new Registry();
    collectDefaultMetrics({ register: prom });
    const skiff = new Registry();
    collectProcessMetrics(skiff);
    const stalls = { prom: [] as number[], skiff: [] as number[] };
    const totals = { prom: [] as number[], skiff: [] as number[] };
    for (let i = 0; i < o.rounds; i++) {
      for (const [name, r] of [['prom', prom], ['skiff', skiff]] as const) {
        let total = 0;
        stalls[name].push(await longestStall(async () => { total = (await scrape(r)).total; }));
        totals[name].push(total);
      }
    }
    const s = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const line = (name: 'prom' | 'skiff') => `longest event-loop stall p50 ${percentile(s(stalls[name]), 50).toFixed(1)} ms, max ${percentile(s(stalls[name]), 100).toFixed(1)} ms; whole scrape p50 ${percentile(s(totals[name]), 50).toFixed(1)} ms`;
    console.log(`${o.fds} extra descriptors open, ${o.rounds} scrapes each, alternating`);
    console.log(`prom-client's defaults: ${line('prom')}`);
    console.log(`skiff's process metrics: ${line('skiff')}`);
    console.log(`metrics-scrape: fds=${o.fds} promStallP50Ms=${percentile(s(stalls.prom), 50).toFixed(1)} skiffStallP50Ms=${percentile(s(stalls.skiff), 50).toFixed(1)}`);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

await main();
