// Admission benchmark (issue 10): the latency one mutating + one validating webhook add to a create
// (p50/p99, 1 and 16 clients) against the same create without them, creates that do not match a
// slow webhook while it holds 16 requests, a CRD with 5 CEL rules against the same CRD without rules,
// and CEL rule evaluation time per object in process. Run: node --import tsx bench/webhooks.ts (after
// `npm run build`; needs openssl for the webhook's certificate).
import { performance } from 'node:perf_hooks';
import { ApiClient, type Reply } from '../test/helpers/api-client.js';
import { startWebhookServer } from '../test/helpers/webhook-server.js';
import { startBenchServer } from './lib/server.js';
import { runPhase, type PhaseResult } from './lib/stats.js';
import { validateCelRules } from '../src/apiserver/cel/crd-rules.js';

const N = 400;

const phase = (name: string, concurrency: number, count: number, op: (i: number) => Promise<Reply>, expect = 201) => runPhase(name, concurrency, count, op, expect);

const cm = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { key: 'value' } });

const RULES = [
  { rule: 'self.replicas <= self.maxReplicas', message: 'replicas must not exceed maxReplicas' },
  { rule: "self.name.matches('^[a-z][a-z0-9-]*$')" },
  { rule: 'size(self.tags) <= 10 && self.tags.all(t, t.size() < 64)' },
  { rule: "!has(self.url) || isURL(self.url)" },
  { rule: "quantity(self.memory).isLessThan(quantity('64Gi'))" },
];
const schema = (rules: unknown[]) => ({
  type: 'object',
  properties: {
    spec: {
      type: 'object', 'x-kubernetes-validations': rules,
      properties: {
        replicas: { type: 'integer' }, maxReplicas: { type: 'integer' }, name: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' } }, url: { type: 'string' }, memory: { type: 'string' },
      },
    },
  },
});
const widgetSpec = { replicas: 2, maxReplicas: 5, name: 'web-1', tags: ['a', 'b', 'c'], url: 'https://example.com/x', memory: '512Mi' };

function celInProcess(): void {
  const s = schema(RULES) as any;
  const obj = { apiVersion: 'cel.bench/v1', kind: 'Widget', metadata: { name: 'w' }, spec: widgetSpec };
  for (let i = 0; i < 2000; i++) validateCelRules(s, obj, obj);
  const rounds = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) { const c = validateCelRules(s, obj); if (c.length) throw new Error('rules failed: ' + JSON.stringify(c)); }
  const per = (performance.now() - t0) / rounds;
  console.log(`CEL in process: 5 rules per object ${(per * 1000).toFixed(1)} µs (${(per * 1000 / 5).toFixed(1)} µs per rule), ${rounds} objects`);
}

async function main(): Promise<void> {
  celInProcess();
  const cleanups: (() => unknown)[] = [];
  const wh = await startWebhookServer({ after: (f) => cleanups.push(f) });
  const server = await startBenchServer(['--disable-controller-manager']);
  try {
    const api = ApiClient.fromKubeconfig(server.kubeconfigPath);
    for (const [name, labels] of [['plain', {}], ['hooked', { webhooks: 'on' }]] as const) {
      const r = await api.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
      if (r.status !== 201) throw new Error(`namespace ${name}: ${r.status} ${r.body}`);
    }
    const hook = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
      name, clientConfig: { url: wh.url(path), caBundle: wh.caBundle }, sideEffects: 'None', admissionReviewVersions: ['v1'],
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }], ...extra,
    });
    const sel = { namespaceSelector: { matchLabels: { webhooks: 'on' } } };
    for (const [res, kind, hooks] of [
      ['mutatingwebhookconfigurations', 'MutatingWebhookConfiguration', [hook('label.bench.skiff.io', '/mutate', sel)]],
      ['validatingwebhookconfigurations', 'ValidatingWebhookConfiguration', [hook('allow.bench.skiff.io', '/deny', sel),
        hook('slow.bench.skiff.io', '/slow/1500', { objectSelector: { matchLabels: { slow: 'yes' } } })]],
    ] as const) {
      const r = await api.post(`/apis/admissionregistration.k8s.io/v1/${res}`, { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name: 'bench' }, webhooks: hooks });
      if (r.status !== 201) throw new Error(`${kind}: ${r.status} ${r.body}`);
    }
    // Warm-up (and wait until the configuration is in force: the label appears).
    for (let i = 0; ; i++) {
      const r = await api.post('/api/v1/namespaces/hooked/configmaps', cm(`warm-${i}`));
      if (r.status === 201 && JSON.parse(r.body).metadata.labels?.['webhook-added'] === 'yes') break;
      if (i > 200) throw new Error('webhooks never came into force');
    }
    for (let i = 0; i < 100; i++) await api.post('/api/v1/namespaces/plain/configmaps', cm(`warm-${i}`));

    const results: PhaseResult[] = [];
    for (const c of [1, 16]) {
      results.push(await phase(`create, no webhooks (c=${c})`, c, N, (i) => api.post('/api/v1/namespaces/plain/configmaps', cm(`p${c}-${i}`))));
      results.push(await phase(`create, mutating+validating (c=${c})`, c, N, (i) => api.post('/api/v1/namespaces/hooked/configmaps', cm(`h${c}-${i}`))));
    }
    for (let k = 0; k < results.length; k += 2) {
      const a = results[k]!, b = results[k + 1]!;
      console.log(`  added by 2 webhook calls (c=${a.concurrency}): p50 +${(b.p50 - a.p50).toFixed(2)} ms, p99 +${(b.p99 - a.p99).toFixed(2)} ms`);
    }

    // 16 creates held by a 1.5 s webhook; other creates meanwhile.
    const slow = Promise.all(Array.from({ length: 16 }, (_, i) => api.post('/api/v1/namespaces/plain/configmaps', cm(`slow-${i}`, { slow: 'yes' }))));
    await new Promise((r) => setTimeout(r, 100));
    await phase('create while 16 requests wait on a slow webhook (c=1)', 1, 100, (i) => api.post('/api/v1/namespaces/plain/configmaps', cm(`during-${i}`)));
    await slow;

    // CRDs with and without 5 CEL rules.
    for (const [name, rules] of [['plain', []], ['ruled', RULES]] as const) {
      const r = await api.post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${name}widgets.cel.bench` },
        spec: { group: 'cel.bench', scope: 'Namespaced', names: { plural: `${name}widgets`, kind: `${name[0]!.toUpperCase()}${name.slice(1)}Widget` },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: schema(rules as unknown[]) } }] },
      });
      if (r.status !== 201) throw new Error(`CRD ${name}: ${r.status} ${r.body}`);
    }
    const crPath = (p: string) => `/apis/cel.bench/v1/namespaces/plain/${p}`;
    const cr = (kind: string, n: string) => ({ apiVersion: 'cel.bench/v1', kind, metadata: { name: n }, spec: widgetSpec });
    for (let i = 0; ; i++) {
      const a = await api.post(crPath('plainwidgets'), cr('PlainWidget', `warm-${i}`));
      const b = await api.post(crPath('ruledwidgets'), cr('RuledWidget', `warm-${i}`));
      if (a.status === 201 && b.status === 201 && i > 50) break;
      if (i > 500) throw new Error(`CRDs never served: ${a.status} ${b.status}`);
      if (a.status !== 201 || b.status !== 201) await new Promise((r) => setTimeout(r, 100));
    }
    // Two interleaved rounds, so the figure is not an artefact of which phase ran first on a busy machine.
    for (const round of [1, 2]) {
      const a = await phase(`create custom resource, no rules (round ${round}, c=1)`, 1, N, (i) => api.post(crPath('plainwidgets'), cr('PlainWidget', `w${round}-${i}`)));
      const b = await phase(`create custom resource, 5 CEL rules (round ${round}, c=1)`, 1, N, (i) => api.post(crPath('ruledwidgets'), cr('RuledWidget', `w${round}-${i}`)));
      console.log(`  added by 5 CEL rules: p50 +${(b.p50 - a.p50).toFixed(2)} ms, p99 +${(b.p99 - a.p99).toFixed(2)} ms`);
    }
  } finally {
    await server.stop();
    for (const f of cleanups.reverse()) await f();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
