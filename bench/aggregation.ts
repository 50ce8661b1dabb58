// API aggregation benchmark (issue 10): the latency skiff adds to a GET of an aggregated resource
// (client → skiff: authentication, authorization, proxy with the front-proxy certificate → extension
// API server) against the same GET sent straight to the extension server with the front-proxy
// certificate and identity headers, p50/p99 at 1 and 16 clients; skiff's own GET of a ConfigMap as
// a reference. The backend is test/fixtures/extension-apiserver.mjs on this host's address (its
// endpoint has no node, so skiff dials it directly; the tunnel path is covered by the e2e test).
// Run: node --import tsx bench/aggregation.ts [N] (after `npm run build`; needs openssl).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, type Reply } from '../test/helpers/api-client.js';
import { makeServingCert } from '../test/helpers/webhook-server.js';
import { startBenchServer } from './lib/server.js';
import { runPhase } from './lib/stats.js';

const N = Number(process.argv[2] ?? 1000);
const GV = 'wardle.example.com/v1alpha1';
const PATH = `/apis/${GV}/namespaces/default/flunders/f1`;

const phase = (name: string, concurrency: number, count: number, op: () => Promise<Reply>) => runPhase(name, concurrency, count, op, 200);

function getter(agent: https.Agent, host: string, port: number, headers: Record<string, string>) {
  return () => new Promise<Reply>((resolve, reject) => {
    https.request({ host, port, path: PATH, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() } as Reply));
    }).on('error', reject).end();
  });
}

async function main(): Promise<void> {
  const hostIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!hostIp) throw new Error('needs a non-loopback IPv4 address (an EndpointSlice may not point at 127.0.0.1)');
  const server = await startBenchServer(['--disable-controller-manager']);
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-aggr-'));
  let backend: ChildProcess | undefined;
  try {
    const tlsDir = join(server.dataDir, 'server', 'tls');
    const certs = makeServingCert(tmp, { ips: [hostIp], dns: ['api.wardle.svc'] });
    backend = spawn(process.execPath, [join(import.meta.dirname, '..', 'test', 'fixtures', 'extension-apiserver.mjs')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env, HOST: hostIp, PORT: '0', TLS_CERT: readFileSync(certs.cert, 'utf8'), TLS_KEY: readFileSync(certs.key, 'utf8'),
        REQUESTHEADER_CA: readFileSync(join(tlsDir, 'request-header-ca.crt'), 'utf8'), REQUESTHEADER_ALLOWED_NAMES: '["system:auth-proxy"]',
      },
    });
    // The fixture logs each request: drain it, but keep the first line (its port).
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      backend!.stdout!.on('data', (c: Buffer) => { if (!out.includes('listening')) { out += c.toString(); const m = /listening (\d+)/.exec(out); if (m) resolve(Number(m[1])); } });
      backend!.on('exit', (code) => reject(new Error(`extension API server exited (${code})`)));
    });
    const api = ApiClient.fromKubeconfig(server.kubeconfigPath, { maxSockets: 16 });
    const post = async (path: string, obj: unknown) => {
      const r = await api.post(path, obj);
      if (r.status !== 201) throw new Error(`${path}: ${r.status} ${r.body}`);
    };
    await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wardle' } });
    await post('/api/v1/namespaces/wardle/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api' }, spec: { ports: [{ name: 'https', port: 443, targetPort: port }] } });
    await post('/apis/discovery.k8s.io/v1/namespaces/wardle/endpointslices', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'api-1', labels: { 'kubernetes.io/service-name': 'api' } },
      addressType: 'IPv4', endpoints: [{ addresses: [hostIp], conditions: { ready: true } }], ports: [{ name: 'https', port, protocol: 'TCP' }],
    });
    await post('/apis/apiregistration.k8s.io/v1/apiservices', {
      apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1alpha1.wardle.example.com' },
      spec: { group: 'wardle.example.com', version: 'v1alpha1', service: { namespace: 'wardle', name: 'api' }, caBundle: Buffer.from(readFileSync(certs.ca)).toString('base64'), groupPriorityMinimum: 1000, versionPriority: 15 },
    });
    await post('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'f1' }, data: { a: 'b' } });
    for (let i = 0; ; i++) {
      if ((await api.get(PATH)).status === 200) break;
      if (i > 300) throw new Error('the APIService never became available');
      await new Promise((r) => setTimeout(r, 100));
    }
    const direct = getter(new https.Agent({
      keepAlive: true, maxSockets: 16, ca: readFileSync(certs.ca), servername: 'api.wardle.svc',
      cert: readFileSync(join(tlsDir, 'client-auth-proxy.crt')), key: readFileSync(join(tlsDir, 'client-auth-proxy.key')),
    }), hostIp, port, { 'X-Remote-User': 'system:admin', 'X-Remote-Group': 'system:masters' });
    const aggregated = () => api.get(PATH);
    const local = () => api.get('/api/v1/namespaces/default/configmaps/f1');
    for (let i = 0; i < 300; i++) { await direct(); await aggregated(); await local(); }

    for (const c of [1, 16]) {
      // Interleaved rounds: a figure should not depend on which phase ran first on a busy machine.
      const d = await phase(`GET straight to the extension server (c=${c})`, c, N, direct);
      const a = await phase(`GET through skiff's aggregator (c=${c})`, c, N, aggregated);
      await phase(`GET of a ConfigMap skiff serves itself (c=${c})`, c, N, local);
      console.log(`  added by aggregation (c=${c}): p50 +${(a.p50 - d.p50).toFixed(2)} ms, p99 +${(a.p99 - d.p99).toFixed(2)} ms`);
    }
    const stats = JSON.parse((await api.get(`/apis/${GV}/requestcounts`)).body);
    console.log(`  the extension server saw ${stats.total} requests on ${stats.connections} TLS connections`);
    api.close();
  } finally {
    backend?.kill('SIGTERM');
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
