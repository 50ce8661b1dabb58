// Admission webhooks served by a pod (issue 10): a webhook server (test/fixtures/admission-webhook.mjs,
// plain node:https) runs as a Deployment behind a Service on a real agent in its own network
// namespace, from an image built offline out of the host's `node` binary; its serving certificate
// comes from a Secret, its CA is the webhooks' caBundle. The server has no route to the pod network,
// so every call goes through the node's tunnel. A MutatingWebhookConfiguration labels Pods created
// in a namespace selected by its labels; a ValidatingWebhookConfiguration denies a Pod labelled
// forbidden=true with its message (as real kubectl prints it). With the Deployment scaled to 0, the
// webhook with failurePolicy Ignore admits and the one with Fail refuses, naming itself.
// Needs root, iproute2, containerd, openssl and ldd; everything it creates is removed, also on failure.
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
import { ok, fails, type KubectlVersion } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { nodeScriptImage } from '../helpers/node-image.js';
import { makeServingCert } from '../helpers/webhook-server.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 250;
const host: NetnsHost = { name: `hookpod-${process.pid}`, netns: `skhp${process.pid}`, hostIf: `skhp${process.pid}`, hostIp: `10.195.${run}.1`, ip: `10.195.${run}.2`, dir: '' };
const IMAGE = 'skiff.local/admission-webhook:test';
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'admission-webhook.mjs');
const NS = 'hookpod';
let server: TestServer;
const tmp = mkdtempSync(join(tmpdir(), 'skiff-hookpod-e2e-'));

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 120_000) =>
  waitFor(fn, what, ms, [host]).catch((e: Error) => { throw new Error(`${e.message}\n${server?.logTail(30) ?? ''}`); });
const k = async (args: string[], version?: KubectlVersion) => ok(await server.kubectl(args, { version }));
/** A pod that would sleep on the agent (whether it runs does not matter to admission). */
const podArgs = (name: string, ns: string, labels = '') =>
  ['run', name, '-n', ns, `--image=${TEST_IMAGE}`, '--image-pull-policy=Never', '--restart=Never', ...(labels ? [`--labels=${labels}`] : []), '--', 'sleep', '3600'];

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['openssl', 'ldd']) { try { execFileSync(bin, ['--version'], { stdio: 'ignore' }); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOENT') missing.push(bin); } }
  if (missing.length) throw new Error(`the admission webhook pod e2e test needs: ${missing.join(', ')}`);
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-hookpod-');
  writeFileSync(join(host.dir, 'agent', 'images', 'admission-webhook.tar'), nodeScriptImage(IMAGE, FIXTURE));
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

test('admission webhooks served by a pod on a tunnelled node: mutate, deny, failurePolicy Ignore vs Fail', { timeout: 600_000 }, async (t) => {
  await eventually(async () => JSON.parse(await k(['get', 'node', host.name, '-o', 'json'])).status.conditions.find((c: any) => c.type === 'Ready')?.status === 'True', 'the node Ready');

  // The webhook: serving certificate for the Service's name, handed over in a Secret.
  const certs = makeServingCert(tmp, { ips: [], dns: [`hook.${NS}.svc`] });
  const caBundle = readFileSync(certs.ca).toString('base64');
  await k(['create', 'namespace', NS]);
  await k(['create', 'secret', 'tls', 'hook-tls', '-n', NS, `--cert=${certs.cert}`, `--key=${certs.key}`]);
  const fromSecret = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: 'hook-tls', key } } });
  ok(await server.kubectl(['apply', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'List', items: [
      {
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'hook', namespace: NS },
        spec: {
          replicas: 1, selector: { matchLabels: { app: 'hook' } },
          template: {
            metadata: { labels: { app: 'hook' } },
            spec: {
              containers: [{
                name: 'hook', image: IMAGE, imagePullPolicy: 'Never', ports: [{ name: 'https', containerPort: 8443 }],
                env: [{ name: 'PORT', value: '8443' }, fromSecret('TLS_CERT', 'tls.crt'), fromSecret('TLS_KEY', 'tls.key')],
                readinessProbe: { tcpSocket: { port: 8443 }, periodSeconds: 2 },
              }],
            },
          },
        },
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hook', namespace: NS }, spec: { selector: { app: 'hook' }, ports: [{ name: 'https', port: 443, targetPort: 8443 }] } },
    ],
  }) }));
  ok(await server.kubectl(['rollout', 'status', '-n', NS, 'deployment/hook', '--timeout=240s'], { timeoutMs: 250_000 }));
  const pod = JSON.parse(await k(['get', 'pods', '-n', NS, '-l', 'app=hook', '-o', 'json'])).items[0];
  assert.equal(pod.spec.nodeName, host.name, 'the webhook runs on the agent in its own network namespace');
  // The server's side has no path to the pod: the only route there is the node's tunnel.
  const route = JSON.parse(execFileSync('ip', ['-j', 'route', 'get', pod.status.podIP], { encoding: 'utf8' }))[0] ?? {};
  assert.notEqual(route.dev, host.hostIf, `the server routes ${pod.status.podIP} to the node's link: ${JSON.stringify(route)}`);
  assert.notEqual(route.gateway, host.ip, `the server routes ${pod.status.podIP} via the node: ${JSON.stringify(route)}`);
  const podCidr = JSON.parse(await k(['get', 'node', host.name, '-o', 'json'])).spec.podCIDR as string;
  assert.ok(podCidr, 'the node has a pod CIDR');
  assert.doesNotMatch(execFileSync('ip', ['route', 'show'], { encoding: 'utf8' }), new RegExp(`^${podCidr.replace(/\./g, '\\.')}\\b`, 'm'), 'no route to the pod CIDR on the server side');

  // Mutating (failurePolicy Ignore) selects namespaces labelled mutate=on; validating (Fail) those
  // labelled validate=on. The webhook's own namespace is in neither, so its pods come and go freely.
  await k(['create', 'namespace', 'hooked']);
  await k(['label', 'namespace', 'hooked', 'mutate=on']);
  await k(['create', 'namespace', 'guarded']);
  await k(['label', 'namespace', 'guarded', 'validate=on']);
  const service = (path: string) => ({ service: { namespace: NS, name: 'hook', path, port: 443 }, caBundle });
  const rules = [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }];
  ok(await server.kubectl(['apply', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'List', items: [
      {
        apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'add-label' },
        webhooks: [{ name: 'add-label.hookpod.test.io', clientConfig: service('/mutate'), rules, namespaceSelector: { matchLabels: { mutate: 'on' } },
          failurePolicy: 'Ignore', sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 10 }],
      },
      {
        apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'deny-forbidden' },
        webhooks: [{ name: 'deny.hookpod.test.io', clientConfig: service('/deny'), rules, namespaceSelector: { matchLabels: { validate: 'on' } },
          failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 10 }],
      },
    ],
  }) }));

  // Webhook configurations are read from the watch cache: probe until the mutation shows.
  let n = 0;
  await eventually(async () => {
    const name = `probe-${n++}`;
    await k(podArgs(name, 'hooked'));
    return JSON.parse(await k(['get', 'pod', name, '-n', 'hooked', '-o', 'json'])).metadata.labels?.['webhook-added'] === 'yes';
  }, 'the mutating webhook called', 60_000);
  const created = await server.kubectl(podArgs('labelled', 'hooked', 'run=labelled'));
  ok(created);
  assert.match(created.stderr, /Warning: labelled by the webhook pod/);
  assert.equal(await k(['get', 'pod', 'labelled', '-n', 'hooked', '-o', 'jsonpath={.metadata.labels.webhook-added}']), 'yes');
  await k(podArgs('plain', 'default'));
  assert.equal(await k(['get', 'pod', 'plain', '-o', 'jsonpath={.metadata.labels.webhook-added}']), '', 'other namespaces are not selected');

  // Denied with the webhook's message, by every kubectl version.
  await eventually(async () => (await server.kubectl(podArgs(`deny-probe-${n++}`, 'guarded', 'forbidden=true'))).code !== 0, 'the validating webhook called', 60_000);
  for (const version of ['1.27', '1.32', '1.33'] as const) {
    fails(await server.kubectl(podArgs('bad', 'guarded', 'forbidden=true'), { version }),
      /admission webhook "deny\.hookpod\.test\.io" denied the request: objects labelled forbidden=true are not allowed here/, `kubectl ${version}`);
  }
  await k(podArgs('fine', 'guarded', 'forbidden=false'));
  // The reviews reached the pod itself, from inside the node (the tunnel's far end), never straight
  // from the server's address on the node's link.
  const logs = await eventually(async () => {
    const l = await k(['logs', '-n', NS, 'deployment/hook']);
    return /POST \/mutate CREATE pods hooked\/labelled from /.test(l) && /POST \/deny CREATE pods guarded\/bad from /.test(l) && l;
  }, 'the reviews in the webhook pod\'s log', 60_000);
  assert.doesNotMatch(logs, new RegExp(` from (::ffff:)?${host.hostIp.replace(/\./g, '\\.')}$`, 'm'), 'no call came straight from the server');
  t.diagnostic(`webhook pod log: ${logs.trim().split('\n').slice(-2).join(' | ')}`);

  // The webhook pod goes away: Ignore admits (unlabelled), Fail refuses and names the webhook.
  await k(['scale', '-n', NS, 'deployment/hook', '--replicas=0']);
  await eventually(async () => JSON.parse(await k(['get', 'pods', '-n', NS, '-l', 'app=hook', '-o', 'json'])).items.length === 0, 'the webhook pod gone');
  await eventually(async () => {
    const r = await server.kubectl(podArgs(`down-${n++}`, 'guarded'));
    return r.code !== 0 && r.stderr;
  }, 'the Fail webhook refusing', 60_000);
  const refused = await server.kubectl(podArgs('refused', 'guarded'));
  fails(refused, /failed calling webhook "deny\.hookpod\.test\.io"/);
  t.diagnostic(`Fail refusal: ${refused.stderr.trim()}`);
  assert.match(refused.stderr, /no endpoints available for service "hook"|connection refused|context deadline exceeded/);
  const admitted = await server.kubectl(podArgs('admitted', 'hooked'));
  ok(admitted);
  assert.doesNotMatch(admitted.stderr, /labelled by the webhook pod/);
  assert.equal(await k(['get', 'pod', 'admitted', '-n', 'hooked', '-o', 'jsonpath={.metadata.labels.webhook-added}']), '', 'Ignore admitted it unmutated');
});
