// Secrets encryption cost and metrics scrape time, in one run: Secret create rate (16 clients) on a
// server without and with --secrets-encryption (AES-CBC), then the time `GET /metrics` takes.
// Run: node --import tsx bench/secrets-encryption.ts (after `npm run build`).
import { performance } from 'node:perf_hooks';
import { ApiClient, credentialsFromKubeconfig } from '../test/helpers/api-client.js';
import { startBenchServer } from './lib/server.js';
import { Counter } from 'prom-client';
import { randomBytes } from 'node:crypto';
import { decryptValue, encryptValue, loadEncryptionConfig } from '../src/storage/encryption.js';
import { ApiServerMetrics } from '../src/apiserver/prometheus.js';
import { ResourceRegistry } from '../src/apiserver/registry.js';

/** The transformer's own cost per Secret (encrypt on write, decrypt of the commit is skipped). */
function cryptoCost(): { encryptUs: number; decryptUs: number } {
  const t = loadEncryptionConfig({ kind: 'EncryptionConfiguration', apiVersion: 'apiserver.config.k8s.io/v1',
    resources: [{ resources: ['secrets'], providers: [{ aescbc: { keys: [{ name: 'k', secret: randomBytes(32).toString('base64') }] } }] }] }).get('/core/secrets/')!;
  const value = JSON.stringify({ kind: 'Secret', metadata: { name: 'x', namespace: 'default', uid: randomBytes(16).toString('hex') }, data: { password: randomBytes(700).toString('base64') } });
  const N = 20_000;
  let s = performance.now();
  let enc = '';
  for (let i = 0; i < N; i++) enc = encryptValue(t, '/core/secrets/default/x', value);
  const encryptUs = ((performance.now() - s) * 1000) / N;
  s = performance.now();
  for (let i = 0; i < N; i++) decryptValue(t, '/core/secrets/default/x', enc);
  return { encryptUs, decryptUs: ((performance.now() - s) * 1000) / N };
}

/** Rendering the server's registry padded to 1,000 series, in process (no TLS, no HTTP). */
async function renderTime(): Promise<{ series: number; medianMs: number; p90Ms: number }> {
  const kinds = new ResourceRegistry();
  const m = new ApiServerMetrics({ store: () => undefined, kinds: () => kinds.all() });
  const filler = new Counter({ name: 'bench_filler_total', help: 'padding', labelNames: ['i'], registers: [m.registry] });
  const count = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#')).length;
  const base = count(await m.registry.metrics());
  for (let i = 0; base + i < 1000; i++) filler.labels(String(i)).inc();
  const series = count(await m.registry.metrics());
  const t: number[] = [];
  for (let i = 0; i < 50; i++) { const s = performance.now(); await m.registry.metrics(); t.push(performance.now() - s); }
  t.sort((a, b) => a - b);
  return { series, medianMs: t[25], p90Ms: t[45] };
}

const CLIENTS = 16;
const PHASE_MS = 6000;

async function createRate(extraArgs: string[]): Promise<{ rate: number; errors: number; scrapeMs: number[]; series: number }> {
  const server = await startBenchServer(['--disable-controller-manager', ...extraArgs]);
  try {
    const client = new ApiClient(credentialsFromKubeconfig(server.kubeconfigPath), { keepAlive: true, maxSockets: CLIENTS });
    let done = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, async (_, w) => {
      for (let i = 0; performance.now() - t0 < PHASE_MS; i++) {
        const r = await client.post('/api/v1/namespaces/default/secrets', {
          apiVersion: 'v1', kind: 'Secret', metadata: { name: `s-${w}-${i}` }, data: { password: Buffer.from(`value-${w}-${i}-${'x'.repeat(64)}`).toString('base64') },
        });
        if (r.status === 201) done++; else errors++;
      }
    }));
    const rate = done / ((performance.now() - t0) / 1000);
    const scrapeMs: number[] = [];
    let series = 0;
    for (let i = 0; i < 10; i++) {
      const s = performance.now();
      const r = await client.get('/metrics');
      scrapeMs.push(performance.now() - s);
      series = r.body.split('\n').filter((l) => l && !l.startsWith('#')).length;
    }
    return { rate, errors, scrapeMs: scrapeMs.sort((a, b) => a - b), series };
  } finally {
    await server.stop();
  }
}

const plain = await createRate([]);
const encrypted = await createRate(['--secrets-encryption']);
const fmt = (r: typeof plain) => `${r.rate.toFixed(0)} creates/s (${r.errors} errors)`;
console.log(`secret create, ${CLIENTS} clients, ${PHASE_MS / 1000} s each:`);
console.log(`  plaintext:  ${fmt(plain)}`);
console.log(`  aescbc:     ${fmt(encrypted)}  (${((1 - encrypted.rate / plain.rate) * 100).toFixed(1)} % slower)`);
const cost = cryptoCost();
console.log(`aescbc per ~1 KB Secret, in process: encrypt ${cost.encryptUs.toFixed(1)} µs, decrypt ${cost.decryptUs.toFixed(1)} µs`);
const render = await renderTime();
console.log(`render of ${render.series} series in process: median ${render.medianMs.toFixed(1)} ms, p90 ${render.p90Ms.toFixed(1)} ms`);
console.log(`GET /metrics (${encrypted.series} series): median ${encrypted.scrapeMs[5].toFixed(1)} ms, max ${encrypted.scrapeMs[9].toFixed(1)} ms (10 scrapes, over HTTPS)`);
