// API benchmark: start time, memory, request latency/throughput at 1, 16 and 64 clients, watch fan-out
// to 1,000 watchers, and memory with 10,000 stored objects. Run: node --import tsx bench/api.ts
// (after `npm run build`). Bounded: each request phase stops after PHASE_MS or PHASE_MAX requests.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { ApiClient, json, type Reply } from '../test/helpers/api-client.js';
import { startBenchServer, rssMb, type BenchServer } from './lib/server.js';
import { summarize, formatPhase, type PhaseResult } from './lib/stats.js';

const PHASE_MS = 4000;
const PHASE_MAX = 20_000;
const CONCURRENCY = [1, 16, 64];
const LIST_ITEMS = 500;
const WATCHERS = 1000;
const WATCH_ROUNDS = 5;
const STORED_TARGET = 10_000;

type Op = (worker: number, i: number) => Promise<Reply>;

/** Runs `op` from `concurrency` loops until the time or request budget is spent. */
async function phase(name: string, concurrency: number, op: Op, expect: number, budget = { ms: PHASE_MS, max: PHASE_MAX }): Promise<PhaseResult> {
  const samples: number[] = [];
  let errors = 0;
  let firstError = '';
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + budget.ms;
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    for (let i = 0; performance.now() < deadline && issued < budget.max; i++) {
      issued++;
      const s = performance.now();
      try {
        const r = await op(w, i);
        if (r.status !== expect) { errors++; firstError ||= `HTTP ${r.status} ${r.body.slice(0, 200)}`; continue; }
        samples.push(performance.now() - s);
      } catch (e) {
        errors++;
        firstError ||= (e as Error).message;
      }
    }
  }));
  const r = summarize(name, concurrency, samples, errors, (performance.now() - t0) / 1000);
  console.log(formatPhase(r) + (firstError ? `  first error: ${firstError}` : ''));
  return r;
}

const cm = (name: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...extra }, data: { key: 'value' } });
const nsPath = (ns: string) => `/api/v1/namespaces/${ns}/configmaps`;

async function createNamespace(api: ApiClient, name: string): Promise<void> {
  const r = await api.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  if (r.status !== 201) throw new Error(`create namespace ${name}: HTTP ${r.status} ${r.body}`);
}

/** Creates `count` ConfigMaps in `ns` from 64 loops; returns how many were stored. */
async function fill(api: ApiClient, ns: string, prefix: string, count: number): Promise<number> {
  let next = 0;
  let ok = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    for (let i = next++; i < count; i = next++) {
      const r = await api.post(nsPath(ns), cm(`${prefix}-${i}`));
      if (r.status === 201) ok++;
    }
  }));
  return ok;
}

/** Runs the request phases; returns how many ConfigMaps they stored. */
async function requestPhases(api: ApiClient, results: Map<string, PhaseResult>): Promise<number> {
  let stored = 0;
  await createNamespace(api, 'bench-list');
  stored += await fill(api, 'bench-list', 'item', LIST_ITEMS);
  for (const c of CONCURRENCY) {
    const ns = `bench-c${c}`;
    await createNamespace(api, ns);
    const latest = new Map<string, any>();   // name → last object written, for updates
    const created = await phase('create', c, async (w, i) => {
      const r = await api.post(nsPath(ns), cm(`cm-${w}-${i}`));
      if (r.status === 201) latest.set(`cm-${w}-${i}`, json(r));
      return r;
    }, 201);
    results.set(`create@${c}`, created);
    stored += latest.size;
    const names = [...latest.keys()];
    results.set(`get@${c}`, await phase('get', c, (w, i) => api.get(`${nsPath(ns)}/${names[(w * 7919 + i) % names.length]}`), 200));
    // Each loop updates its own objects, so no update conflicts with another in flight.
    const mine = Array.from({ length: c }, (_, w) => names.filter((_, k) => k % c === w));
    results.set(`update@${c}`, await phase('update', c, async (w, i) => {
      const own = mine[w]!;
      const name = own[i % own.length]!;
      const obj = latest.get(name);
      const r = await api.put(`${nsPath(ns)}/${name}`, { ...obj, data: { key: `v${i}` } });
      if (r.status === 200) latest.set(name, json(r));
      return r;
    }, 200));
    results.set(`list500@${c}`, await phase(`list(${LIST_ITEMS})`, c, () => api.get(nsPath('bench-list')), 200,
      { ms: PHASE_MS, max: c === 1 ? 500 : 2000 }));
  }
  return stored;
}

/** p99 of the time from an update to its MODIFIED event, over WATCHERS watchers and a few rounds. */
async function watchPhase(api: ApiClient): Promise<PhaseResult> {
  await createNamespace(api, 'bench-watch');
  const target = json(await api.post(nsPath('bench-watch'), cm('target')));
  const sent = new Map<string, number>();   // stamp → time of the update
  const samples: number[] = [];
  const got = new Map<string, number>();    // stamp → watchers that saw it
  const watchClient = new ApiClient(api.creds, { keepAlive: true });
  const t0 = performance.now();
  const streams = await Promise.all(Array.from({ length: WATCHERS }, () =>
    watchClient.watch(`${nsPath('bench-watch')}?watch=true&resourceVersion=${target.metadata.resourceVersion}`, (ev) => {
      const stamp = ev.object?.metadata?.annotations?.['bench/stamp'];
      if (ev.type !== 'MODIFIED' || !stamp || !sent.has(stamp)) return;
      samples.push(performance.now() - sent.get(stamp)!);
      got.set(stamp, (got.get(stamp) ?? 0) + 1);
    })));
  const bad = streams.filter((s) => s.status !== 200);
  console.log(`watch          ${WATCHERS} watchers connected in ${(performance.now() - t0).toFixed(0)} ms${bad.length ? `, ${bad.length} refused (HTTP ${bad[0]!.status})` : ''}`);
  let obj = target;
  let missed = 0;
  for (let round = 0; round < WATCH_ROUNDS; round++) {
    await new Promise((r) => setTimeout(r, 300));
    const stamp = `r${round}`;
    sent.set(stamp, performance.now());
    const r = await api.put(`${nsPath('bench-watch')}/target`, { ...obj, metadata: { ...obj.metadata, annotations: { 'bench/stamp': stamp } } });
    if (r.status !== 200) throw new Error(`watch update: HTTP ${r.status} ${r.body}`);
    obj = json(r);
    const deadline = performance.now() + 10_000;
    while ((got.get(stamp) ?? 0) < WATCHERS - bad.length && performance.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    missed += WATCHERS - bad.length - (got.get(stamp) ?? 0);
  }
  for (const s of streams) s.close();
  watchClient.close();
  const res = summarize('watch-deliver', WATCHERS, samples, missed, 1);
  console.log(`watch-deliver  ${WATCHERS} watchers × ${WATCH_ROUNDS} updates: p50=${res.p50.toFixed(2)}ms p99=${res.p99.toFixed(2)}ms${missed ? `  missed=${missed}` : ''}`);
  return res;
}

async function main(): Promise<void> {
  const began = performance.now();
  console.log(`skiff API benchmark ${new Date().toISOString()} on ${os.cpus().length}× ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}`);
  let server: BenchServer | undefined;
  const cleanup = () => { if (server) server.proc.kill('SIGKILL'); };
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    server = await startBenchServer();
    const pid = server.proc.pid!;
    const startMs = server.startMs;
    console.log(`start          ${startMs.toFixed(0)} ms from spawn to /readyz ok`);
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = rssMb(pid);
    console.log(`idle RSS       ${idleRss.toFixed(1)} MB`);

    const api = ApiClient.fromKubeconfig(server.kubeconfigPath);
    const results = new Map<string, PhaseResult>();
    const written = await requestPhases(api, results);
    const watch = await watchPhase(api);
    api.close();
    console.log(`RSS after load ${rssMb(pid).toFixed(1)} MB (${written} ConfigMaps, after ${WATCHERS} watchers)`);
    await server.stop();

    // Memory per stored object, on a fresh server so the load above does not blur it.
    server = await startBenchServer();
    const api2 = ApiClient.fromKubeconfig(server.kubeconfigPath);
    await createNamespace(api2, 'bench-bulk');
    const fillStart = performance.now();
    const added = await fill(api2, 'bench-bulk', 'bulk', STORED_TARGET);
    console.log(`fill           ${added} of ${STORED_TARGET} creates in ${((performance.now() - fillStart) / 1000).toFixed(1)} s on a fresh server`);
    api2.close();
    await new Promise((r) => setTimeout(r, 1000));
    const rss10k = rssMb(server.proc.pid!);
    console.log(`RSS @${added}    ${rss10k.toFixed(1)} MB`);

    const f = (k: string, field: keyof PhaseResult, digits = 0) => {
      const v = results.get(k)?.[field];
      return typeof v === 'number' ? v.toFixed(digits) : '?';
    };
    console.log(`\napi: start=${startMs.toFixed(0)}ms idleRSS=${idleRss.toFixed(0)}MB create_p99@16=${f('create@16', 'p99', 1)}ms ` +
      `creates/s@64=${f('create@64', 'perSecond')} gets/s@64=${f('get@64', 'perSecond')} watch_p99@${WATCHERS}=${watch.p99.toFixed(1)}ms ` +
      `rss@10k=${rss10k.toFixed(0)}MB`);
    console.log(`goals: start<1000ms idleRSS<80MB create_p99@16<20ms creates/s@64>=3000 gets/s@64>=10000 watch_p99@1000<50ms; took ${((performance.now() - began) / 1000).toFixed(0)} s`);
  } finally {
    await server?.stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
