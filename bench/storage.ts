// Storage benchmark: durable creates/s through the watch cache at several concurrencies, and list
// latency over 10,000 pods. Run: node --import tsx bench/storage.ts (about 15 s).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/storage/index.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
const { store, backend } = await openStore(dir);

function pod(ns: string, name: string): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, uid: crypto.randomUUID(), labels: { app: name.slice(0, 5), tier: 'web' }, creationTimestamp: new Date().toISOString() },
    spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'registry.local/app:1.0', ports: [{ containerPort: 8080 }], resources: { requests: { cpu: '100m', memory: '64Mi' } } }] },
    status: { phase: 'Running', podIP: '10.42.0.7', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

async function createsPerSecond(concurrency: number, ms: number): Promise<string> {
  const tx0 = backend.stats.transactions;
  let n = 0;
  const until = performance.now() + ms;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < until; i++) {
      await store.create(`/core/pods/c${concurrency}/w${w}-${i}`, pod(`c${concurrency}`, `w${w}-${i}`));
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  const tx = backend.stats.transactions - tx0;
  return `creates c=${concurrency}: ${Math.round(n / secs)}/s (${n} in ${tx} commits, ${(n / tx).toFixed(1)} per commit)`;
}

function timeIt(runs: number, fn: () => unknown): string {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return `median ${times[runs >> 1].toFixed(2)} ms, max ${times[runs - 1].toFixed(2)} ms`;
}

try {
  for (const c of [1, 16, 64]) console.log(await createsPerSecond(c, 3000));

  const N = 10_000;
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) writes.push(store.create(`/core/pods/ns${i % 50}/p${i}`, pod(`ns${i % 50}`, `p${i}`)));
  await Promise.all(writes);
  const resource = '/core/pods/ns';   // the 10,000 pods, apart from those written above
  const count = store.list(resource).items.length;
  console.log(`list ${count} pods (first, sorts keys): ${timeIt(1, () => store.list(resource))}`);
  console.log(`list ${count} pods: ${timeIt(21, () => store.list(resource))}`);
  console.log(`list one namespace (200 pods): ${timeIt(21, () => store.list('/core/pods/ns7/'))}`);
  console.log(`list all in pages of 500: ${timeIt(11, () => {
    let after: string | undefined;
    do after = store.list(resource, { limit: 500, afterKey: after }).lastKey; while (after);
  })}`);
  console.log(`list with a filter matching 1/10: ${timeIt(21, () => store.list(resource, { filter: (o) => o.obj.metadata.name.endsWith('3') }))}`);
  console.log(`encode ${count} pods to JSON, first time: ${timeIt(1, () => store.list(resource).items.forEach((o) => o.json()))}`);
  console.log(`encode ${count} pods to JSON, cached: ${timeIt(11, () => store.list(resource).items.forEach((o) => o.json()))}`);
  console.log(`database ${(await backend.dbSize() / 1e6).toFixed(1)} MB at revision ${backend.currentRevision()}`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
