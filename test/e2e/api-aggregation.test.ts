// API aggregation end to end (issue 10): a small extension API server (test/fixtures/
// extension-apiserver.mjs) runs as a pod on a real agent in its own network namespace, from an image
// built offline out of the host's `node` binary and its shared libraries. It trusts only the
// request-header CA that skiff publishes in kube-system/extension-apiserver-authentication (the test
// hands it over through a Secret). An APIService registers it; the server reaches the pod through the
// node's tunnel. Real kubectl (1.27, 1.32, 1.33) then reads it through skiff: `get --raw`,
// api-versions, api-resources, `get flunders`, `get -w` (a streamed watch), `explain` (the backend's
// OpenAPI v3, merged); the backend sees the caller as X-Remote-User; an
// unauthenticated request is refused with 401 without reaching it; stopping the backend turns the
// APIService Available=False while every other kubectl command keeps working.
// Needs root, iproute2, containerd and openssl; everything it creates is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { ok, type KubectlVersion } from '../helpers/kubectl.js';
import { nodeScriptImage } from '../helpers/node-image.js';
import { makeServingCert } from '../helpers/webhook-server.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 250;
const host: NetnsHost = { name: `aggr-${process.pid}`, netns: `skagg${process.pid}`, hostIf: `skag${process.pid}`, hostIp: `10.194.${run}.1`, ip: `10.194.${run}.2`, dir: '' };
const IMAGE = 'skiff.local/extension-apiserver:test';
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'extension-apiserver.mjs');
const GV = 'wardle.example.com/v1alpha1';
const VERSIONS: KubectlVersion[] = ['1.27', '1.32', '1.33'];
let server: TestServer;
const tmp = mkdtempSync(join(tmpdir(), 'skiff-aggr-e2e-'));

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 120_000) =>
  waitFor(fn, what, ms, [host]).catch((e: Error) => { throw new Error(`${e.message}\n${server?.logTail(30) ?? ''}`); });
const k = async (args: string[], version?: KubectlVersion) => ok(await server.kubectl(args, { version }));

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['openssl', 'ldd']) { try { execFileSync(bin, ['--version'], { stdio: 'ignore' }); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOENT') missing.push(bin); } }
  if (missing.length) throw new Error(`the API aggregation e2e test needs: ${missing.join(', ')}`);
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-agg-');
  writeFileSync(join(host.dir, 'agent', 'images', 'extension-apiserver.tar'), nodeScriptImage(IMAGE, FIXTURE));
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--tls-san', host.hostIp] });
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  startNetnsAgent(host, server, token);
});

after(async () => {
  host.proc?.kill('SIGKILL');
  if (host.dir) await teardownRuntime({ dataDir: host.dir, removeDataDir: true }).catch(() => undefined);
  removeHostNetwork(host);
  rmSync(tmp, { recursive: true, force: true });
});

test('an extension API server in a pod, registered by an APIService, served through skiff to real kubectl', { timeout: 600_000 }, async () => {
  await eventually(async () => JSON.parse(await k(['get', 'node', host.name, '-o', 'json'])).status.conditions.find((c: any) => c.type === 'Ready')?.status === 'True', 'the node Ready');

  // What a real extension server reads at start: the front-proxy trust skiff publishes.
  const auth = JSON.parse(await k(['get', 'configmap', '-n', 'kube-system', 'extension-apiserver-authentication', '-o', 'json'])).data;
  assert.deepEqual(JSON.parse(auth['requestheader-allowed-names']), ['system:auth-proxy']);
  const certs = makeServingCert(tmp, { ips: ['127.0.0.1'], dns: ['api.wardle.svc'] });
  writeFileSync(join(tmp, 'requestheader-ca.crt'), auth['requestheader-client-ca-file']);
  await k(['create', 'namespace', 'wardle']);
  await k(['create', 'secret', 'generic', 'wardle-tls', '-n', 'wardle', `--from-file=tls.crt=${certs.cert}`, `--from-file=tls.key=${certs.key}`,
    `--from-file=requestheader-ca.crt=${join(tmp, 'requestheader-ca.crt')}`, `--from-literal=allowed-names=${auth['requestheader-allowed-names']}`]);
  const fromSecret = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: 'wardle-tls', key } } });
  const caBundle = Buffer.from(readFileSync(certs.ca)).toString('base64');
  ok(await server.kubectl(['apply', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'List', items: [
      {
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'wardle-api', namespace: 'wardle' },
        spec: {
          replicas: 1, selector: { matchLabels: { app: 'wardle-api' } },
          template: {
            metadata: { labels: { app: 'wardle-api' } },
            spec: {
              containers: [{
                name: 'api', image: IMAGE, imagePullPolicy: 'Never', ports: [{ name: 'https', containerPort: 8443 }],
                env: [{ name: 'PORT', value: '8443' }, fromSecret('TLS_CERT', 'tls.crt'), fromSecret('TLS_KEY', 'tls.key'),
                  fromSecret('REQUESTHEADER_CA', 'requestheader-ca.crt'), fromSecret('REQUESTHEADER_ALLOWED_NAMES', 'allowed-names')],
                readinessProbe: { tcpSocket: { port: 8443 }, periodSeconds: 2 },
              }],
            },
          },
        },
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'wardle' }, spec: { selector: { app: 'wardle-api' }, ports: [{ name: 'https', port: 443, targetPort: 8443 }] } },
      {
        apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1alpha1.wardle.example.com' },
        spec: { group: 'wardle.example.com', version: 'v1alpha1', service: { namespace: 'wardle', name: 'api' }, caBundle, groupPriorityMinimum: 1000, versionPriority: 15 },
      },
    ],
  }) }));
  ok(await server.kubectl(['rollout', 'status', '-n', 'wardle', 'deployment/wardle-api', '--timeout=240s'], { timeoutMs: 250_000 }));
  const pod = JSON.parse(await k(['get', 'pods', '-n', 'wardle', '-l', 'app=wardle-api', '-o', 'json'])).items[0];
  assert.equal(pod.spec.nodeName, host.name, 'the backend runs on the agent in its own network namespace (reached through its tunnel)');

  await eventually(async () => /True/.test(await k(['get', 'apiservice', 'v1alpha1.wardle.example.com'])), 'the APIService Available', 60_000);
  const row = await k(['get', 'apiservice', 'v1alpha1.wardle.example.com']);
  assert.match(row, /v1alpha1\.wardle\.example\.com\s+wardle\/api\s+True/);

  for (const version of VERSIONS) {
    const raw = JSON.parse(await k(['get', '--raw', `/apis/${GV}`], version));
    assert.equal(raw.groupVersion, GV, `kubectl ${version} get --raw`);
    assert.match(await k(['api-versions'], version), new RegExp(`^${GV.replace(/\./g, '\\.')}$`, 'm'), `kubectl ${version} api-versions`);
    assert.match(await k(['api-resources', '--api-group=wardle.example.com'], version), /^flunders\s+fl\s+wardle\.example\.com\/v1alpha1\s+true\s+Flunder/m, `kubectl ${version} api-resources`);
    const got = await k(['get', 'flunders', '-n', 'default'], version);
    assert.match(got, /^f1\b/m, `kubectl ${version} get flunders`);
    assert.match(got, /^f2\b/m);
  }
  // A watch streams through skiff and the tunnel: the backend sends an event a second.
  const watch = server.kubectlStream(['get', 'flunders', '-n', 'default', '--watch-only', '-o', 'name']);
  try {
    await watch.waitFor(/flunder\.wardle\.example\.com\/w0\n[\s\S]*flunder\.wardle\.example\.com\/w2\n/, 60_000);
  } finally { await watch.stop(); }

  // OpenAPI v3 from the backend, merged: kubectl explain reads it.
  assert.match(await k(['explain', 'flunders.spec']), /seenUser\s+<string>\s+The X-Remote-User the front proxy sent\./);
  // The backend saw who asked (the admin's client certificate), not their credentials.
  const f1 = JSON.parse(await k(['get', 'fl', 'f1', '-n', 'default', '-o', 'json']));
  assert.equal(f1.spec.seenUser, 'system:admin');
  assert.deepEqual(f1.spec.seenGroups, ['system:masters', 'system:authenticated']);
  assert.equal(f1.spec.seenAuthorization, '');
  assert.equal(JSON.parse(await k(['get', 'fl', 'f1', '-n', 'default', '-o', 'json', '--as', 'alice', '--as-group', 'system:masters'])).spec.seenUser, 'alice');
  assert.match(await k(['logs', '-n', 'wardle', 'deployment/wardle-api']), /GET \/apis\/wardle\.example\.com\/v1alpha1\/namespaces\/default\/flunders\/f1.* user=alice/);

  // No credentials: 401 from skiff, and the backend never hears of it.
  const before = JSON.parse(await k(['get', '--raw', `/apis/${GV}/requestcounts`])).total;
  const anon = await server.request('GET', `/apis/${GV}/namespaces/default/flunders`, { noAuth: true });
  assert.equal(anon.status, 401);
  assert.equal(anon.json().reason, 'Unauthorized');
  assert.equal(JSON.parse(await k(['get', '--raw', `/apis/${GV}/requestcounts`])).total, before + 1, 'only the second count reached the backend');

  // The backend stops: Available=False with kube-aggregator's reason; the rest of kubectl works.
  await k(['scale', '-n', 'wardle', 'deployment/wardle-api', '--replicas=0']);
  const down = await eventually(async () => {
    const a = JSON.parse(await k(['get', 'apiservice', 'v1alpha1.wardle.example.com', '-o', 'json']));
    const c = a.status.conditions.find((x: any) => x.type === 'Available');
    return c.status === 'False' && c;
  }, 'the APIService Available=False', 120_000);
  assert.ok(['MissingEndpoints', 'EndpointsNotFound', 'FailedDiscoveryCheck'].includes(down.reason), `reason ${down.reason}: ${down.message}`);
  assert.match(await k(['get', 'apiservice', 'v1alpha1.wardle.example.com']), /False \((MissingEndpoints|EndpointsNotFound|FailedDiscoveryCheck)\)/);
  const raw = await server.kubectl(['get', '--raw', `/apis/${GV}`]);
  assert.notEqual(raw.code, 0);
  assert.match(raw.stderr, /ServiceUnavailable|the server is currently unable to handle the request/);
  // Aggregated discovery lists the group version as Stale (kube-aggregator does the same): client-go
  // counts it as failed and drops it, so kubectl sees no flunders, and everything else as before.
  for (const version of VERSIONS) {
    const pods = await server.kubectl(['get', 'pods', '-A'], { version });
    assert.equal(pods.code, 0, `kubectl ${version} get pods: ${pods.stderr}`);
    const res = await server.kubectl(['api-resources'], { version });
    assert.equal(res.code, 0, `kubectl ${version} api-resources: ${res.stderr}`);
    assert.match(res.stdout, /^pods\s+po\s+v1\s+true\s+Pod/m, `kubectl ${version} api-resources still lists the rest`);
    assert.doesNotMatch(res.stdout, /^flunders/m, `kubectl ${version} api-resources without the stale group version`);
    const gone = await server.kubectl(['get', 'flunders', '-n', 'default'], { version });
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /the server doesn't have a resource type "flunders"|the server is currently unable to handle the request/, `kubectl ${version}`);
  }
  ok(await server.kubectl(['create', 'configmap', 'still-writable', '--from-literal=a=b']));

  // Back up: available again, served again.
  await k(['scale', '-n', 'wardle', 'deployment/wardle-api', '--replicas=1']);
  await eventually(async () => /True/.test(await k(['get', 'apiservice', 'v1alpha1.wardle.example.com'])), 'the APIService Available again', 240_000);
  assert.match(await k(['get', 'flunders', '-n', 'default']), /^f1\b/m);
});
